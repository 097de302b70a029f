// Weight layout conversions done once at load time (see DT_Q8P in kernels.h). Scales are moved as
// bytes: a view at an odd offset packs in place too.
#include <cstring>
#include <vector>

#include "kernels.h"

namespace moe {

void pack_q8(uint8_t* data, uint8_t* scales, int rows, int cols) {
  const int nb = cols / 32;
  const size_t gbytes = static_cast<size_t>(16) * cols;
  std::vector<uint8_t> w(gbytes);
  std::vector<uint16_t> s(static_cast<size_t>(16) * nb);
  for (int g = 0; g < rows / 16; g++) {
    uint8_t* dg = data + g * gbytes;
    uint8_t* sg = scales + static_cast<size_t>(g) * 32 * nb;
    std::memcpy(w.data(), dg, gbytes);
    std::memcpy(s.data(), sg, s.size() * 2);
    for (int b = 0; b < nb; b++)
      for (int r = 0; r < 16; r++) {
        std::memcpy(sg + (b * 16 + r) * 2, &s[static_cast<size_t>(r) * nb + b], 2);
        for (int k = 0; k < 8; k++)
          for (int e = 0; e < 4; e++)
            dg[b * 512 + k * 64 + r * 4 + e] = w[static_cast<size_t>(r) * cols + b * 32 + k * 4 + e] ^ 0x80;
      }
  }
}

}  // namespace moe
