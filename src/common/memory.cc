#include "common/memory.h"

#include <malloc.h>

namespace burstlet {

void tuneAllocator() {
  // Trim only when 32 MiB are free at the top of the heap; serve blocks up to 4 MiB from the
  // heap rather than fresh mappings (watch pages and chunk buffers are below that).
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

}  // namespace burstlet
