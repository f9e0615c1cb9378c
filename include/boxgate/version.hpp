#pragma once

namespace boxgate {
inline constexpr const char* kVersion = "0.1.0";
}
