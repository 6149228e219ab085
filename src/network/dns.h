// The DNS a burst pod resolves with. A kubelet gives a ClusterFirst pod the cluster DNS
// (--cluster-dns, --cluster-domain); the backend's own DNS knows nothing of the cluster (on CCI,
// ClusterFirst acts as Default), so burstlet writes what the kubelet would have put in the
// pod's resolv.conf into the backend pod itself: dnsPolicy None and a dnsConfig of the cluster
// nameservers, the searches <ns>.svc.<domain> svc.<domain> <domain>, ndots:5, merged with the
// pod's own dnsConfig and cut to the limits the backend's API accepts (as the kubelet cuts
// them, with the same event).
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "common/result.h"

namespace burstlet::network {

struct DnsOptions {
  // The cluster DNS addresses (the kube-dns Service's ClusterIP). Empty: DNS is left to the
  // backend and pods keep their dnsPolicy.
  std::vector<std::string> clusterDNS;
  std::string clusterDomain = "cluster.local";
  // What the backend's API validates for dnsPolicy None: 3 nameservers; 32 searches of 2048
  // characters together since Kubernetes 1.28, 6 and 256 before (CCI's 1.19).
  size_t maxNameservers = 3;
  size_t maxSearches = 32;
  size_t maxSearchChars = 2048;
};

// The limits of a backend API of the given minor version of Kubernetes 1.x.
DnsOptions withApiLimits(DnsOptions options, int backendMinor);

// A note for the pod's events (type Warning), worded like the kubelet's.
struct DnsNote {
  std::string reason;
  std::string message;
};

// Rewrites `pod` (a Pod object) for the backend: ClusterFirst (or no policy, or
// ClusterFirstWithHostNet) becomes None with the cluster's dnsConfig; Default and None stay as
// written. Returns the notes to record (searches or nameservers cut to the limits). kInvalid
// when the pod is not an object with a spec.
Result<std::vector<DnsNote>> applyClusterDns(boost::json::value& pod, const DnsOptions& options);

// Checks the options (addresses are IPs, domain a DNS name). kInvalid naming the field.
Status validateDnsOptions(const DnsOptions& options);

}  // namespace burstlet::network
