//! Small HTTP helpers over awc (each load thread runs its own actix-rt
//! event loop and connection pool).

use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// Runs `f` to completion on a new actix-rt event loop on this thread.
pub fn block_on<F: Future>(f: F) -> F::Output {
    actix_rt::System::new().block_on(f)
}

/// A client with up to `connections` keep-alive connections per host.
pub fn client(timeout: Duration, connections: usize) -> awc::Client {
    awc::Client::builder()
        .timeout(timeout)
        .connector(
            awc::Connector::new()
                .limit(connections.max(1))
                .timeout(Duration::from_secs(10)),
        )
        .finish()
}

/// `GET url`: `(status, body)`.
pub async fn get(c: &awc::Client, url: &str) -> Result<(u16, Vec<u8>)> {
    let mut r = c
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow!("GET {url}: {e}"))?;
    let status = r.status().as_u16();
    let body = r
        .body()
        .limit(64 << 20)
        .await
        .map_err(|e| anyhow!("GET {url}: reading the body: {e}"))?;
    Ok((status, body.to_vec()))
}

/// `GET url` answered 2xx with JSON.
pub async fn get_json(c: &awc::Client, url: &str) -> Result<serde_json::Value> {
    let (status, body) = get(c, url).await?;
    if !(200..300).contains(&status) {
        bail!("GET {url}: {status}: {}", excerpt(&body));
    }
    serde_json::from_slice(&body).map_err(|e| anyhow!("GET {url}: not JSON: {e}"))
}

/// `POST url` with a JSON body: `(status, JSON answer or null)`.
pub async fn post_json(
    c: &awc::Client,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, serde_json::Value)> {
    let mut r = c
        .post(url)
        .insert_header(("content-type", "application/json"))
        .send_body(body)
        .await
        .map_err(|e| anyhow!("POST {url}: {e}"))?;
    let status = r.status().as_u16();
    let body = r
        .body()
        .limit(64 << 20)
        .await
        .map_err(|e| anyhow!("POST {url}: reading the body: {e}"))?;
    Ok((
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    ))
}

/// The start of a body, for error messages.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// Samples of the Prometheus text format: `name{labels}` → value
/// (comments skipped).
pub fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Starling's `/metrics`, parsed.
pub async fn server_metrics(c: &awc::Client, base: &str) -> Result<BTreeMap<String, f64>> {
    let url = format!("{base}/metrics");
    let (status, body) = get(c, &url).await?;
    if status != 200 {
        bail!("GET {url}: {status}");
    }
    Ok(parse_prometheus(&String::from_utf8_lossy(&body)))
}

/// `after - before` of a counter (0 when absent).
pub fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, name: &str) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_samples_are_read_with_their_labels() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total 12\nb{stream=\"raw\",consumer=\"x\"} 3.5\n\nbad line\n";
        let m = parse_prometheus(text);
        assert_eq!(m.get("a_total"), Some(&12.0));
        assert_eq!(m.get("b{stream=\"raw\",consumer=\"x\"}"), Some(&3.5));
        assert_eq!(m.len(), 2);
        let mut later = m.clone();
        later.insert("a_total".into(), 20.0);
        assert_eq!(delta(&m, &later, "a_total"), 8.0);
        assert_eq!(delta(&m, &later, "missing"), 0.0);
    }
}
