// The viewer's markup, styles and script, compiled in from src/view/viewer.*
// (view_assets.cc.in).
#pragma once

namespace steper::view {
extern const char* const kViewerHtml;
extern const char* const kViewerCss;
extern const char* const kViewerJs;
}  // namespace steper::view
