//! The dashboard's files, embedded at build time (build.rs builds them into `OUT_DIR/dist`).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, Uri, header};
use include_dir::{Dir, include_dir};

static DIST: Dir<'static> = include_dir!("$OUT_DIR/dist");

/// Looks up an embedded file by its path relative to the dashboard's root.
pub fn get(path: &str) -> Option<&'static [u8]> {
    DIST.get_file(path).map(|f| f.contents())
}

/// Serves an embedded file; unknown paths without an extension get index.html (client-side routes).
/// Anything but GET/HEAD is a 404: gRPC paths of services the gateway does not expose end here.
pub async fn serve(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    let (path, bytes) = match get(path) {
        Some(bytes) => (path, bytes),
        None if !path.rsplit('/').next().unwrap_or_default().contains('.') => match get("index.html") {
            Some(bytes) => ("index.html", bytes),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        None => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    // Vite puts a content hash in every asset's name, so those never change; index.html must
    // always be revalidated or a new build would keep loading old assets.
    let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    let mut response = Body::from(bytes).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
