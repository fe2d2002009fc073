// The status page served at `/`: one HTML document with inline script and styles, no build
// step and nothing fetched from elsewhere. It polls /api/status and /api/history every two
// seconds and draws the last hour as small SVG charts, and /api/checks every 30 seconds (every
// two while the first run of the checks is still going on). A token given as ?token= is sent
// on as a bearer header.
#pragma once

#include <string_view>

namespace tidemark::http {

extern const std::string_view kStatusPage;

}  // namespace tidemark::http
