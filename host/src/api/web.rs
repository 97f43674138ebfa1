//! The browser client and the admin console: files under `host/web/`,
//! built into the binary, served as they are (no build step, no CDN).
//!
//! - `GET /`: the player client; `GET /admin`: the admin console;
//! - `GET /assets/{file}`: their scripts, styles and icon;
//! - `GET /openapi.json`: the OpenAPI 3.1 description of the HTTP API.
//!
//! Every answer carries a strict Content-Security-Policy (scripts and
//! styles from this host only, nothing inline, no frames, no forms posted
//! elsewhere), an `ETag` of its content and `Cache-Control: no-cache`, so a
//! browser revalidates and gets a new build at once (a 304 otherwise).

use super::routes::Reply;
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HeaderName, IF_NONE_MATCH,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// A file served to browsers.
pub(super) struct Asset {
    /// The path it is served at.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../web/", $file)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file, by the path it is served at.
static ASSETS: &[Asset] = &[
    asset!("/", "index.html", HTML),
    asset!("/admin", "admin.html", HTML),
    asset!("/assets/hoard.css", "hoard.css", CSS),
    asset!("/assets/lib.js", "lib.js", JS),
    asset!("/assets/play.js", "play.js", JS),
    asset!("/assets/hokm.js", "hokm.js", JS),
    asset!("/assets/roguelike.js", "roguelike.js", JS),
    asset!("/assets/tabletop.js", "tabletop.js", JS),
    asset!("/assets/admin.js", "admin.js", JS),
    asset!("/assets/icon.svg", "icon.svg", "image/svg+xml"),
    asset!("/openapi.json", "openapi.json", "application/json"),
];

/// What a page may load and run: its own scripts and styles, no inline
/// code, requests and sockets to this host only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The file served at `path` (`/admin/` as `/admin`).
pub(super) fn asset(path: &str) -> Option<&'static Asset> {
    let path = match path {
        "/index.html" => "/",
        "/admin/" => "/admin",
        path => path,
    };
    ASSETS.iter().find(|asset| asset.path == path)
}

/// Every path a file is served at, for the OpenAPI check.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|asset| asset.path)
}

/// The file, or a 304 when the browser holds this version.
pub(super) fn serve(asset: &'static Asset, headers: &HeaderMap) -> Reply {
    let etag = etag(asset);
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == etag.to_str().unwrap_or(""))
        });
    let mut response = if fresh {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Full::new(Bytes::from_static(asset.body)));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, etag.clone());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(headers);
    Ok(response)
}

/// The headers every page and file carries.
fn secure(headers: &mut HeaderMap) {
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// A strong tag of the file's content, computed once per file.
fn etag(asset: &'static Asset) -> HeaderValue {
    static TAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                let digest = Sha256::digest(asset.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a header value")
            })
            .collect()
    });
    let index = ASSETS
        .iter()
        .position(|a| std::ptr::eq(a, asset))
        .expect("an asset of the table");
    tags[index].clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_loads_only_files_that_are_served() {
        for page in ["/", "/admin"] {
            let html = std::str::from_utf8(asset(page).unwrap().body).unwrap();
            for attribute in ["src=\"", "href=\""] {
                for part in html.split(attribute).skip(1) {
                    let target = &part[..part.find('"').unwrap()];
                    if target.starts_with('#') {
                        continue;
                    }
                    assert!(asset(target).is_some(), "{page} loads {target}, not served");
                }
            }
            for tag in html.split("<script").skip(1) {
                let head = &tag[..tag.find('>').unwrap()];
                assert!(head.contains("src="), "{page}: an inline script");
            }
            assert!(!html.contains("style=\""), "{page}: inline style");
        }
    }

    #[test]
    fn scripts_import_only_files_that_are_served() {
        for script in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(script.body).unwrap();
            for part in text.split("from \"").skip(1) {
                let target = &part[..part.find('"').unwrap()];
                let path = format!("/assets/{}", target.trim_start_matches("./"));
                assert!(asset(&path).is_some(), "{} imports {target}", script.path);
            }
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "eval(",
                "document.write",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", script.path);
            }
        }
    }

    #[test]
    fn the_openapi_description_is_json() {
        let text = asset("/openapi.json").unwrap().body;
        let doc: serde_json::Value = serde_json::from_slice(text).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
