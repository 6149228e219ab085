// Turns API server responses into classified Errors: the HTTP status and the Status object
// in the body (reason, message, details.retryAfterSeconds) decide the ErrorCode.
#pragma once

#include "common/result.h"
#include "kube/http.h"

namespace burstlet::kube {

// The Error for a non-2xx response. `what` names the request ("get pods ns/x").
Error errorFromResponse(const HttpResponse& response, std::string_view what);

// ErrorCode for an HTTP status and Status reason, as the API classifies them.
ErrorCode classifyStatus(unsigned httpStatus, std::string_view reason);

}  // namespace burstlet::kube
