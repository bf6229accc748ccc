//! Secret values known to this process, and their masking in anything printed.
//!
//! Every password and key that is loaded is registered here; errors and status lines pass
//! through [`redact`] before they are printed, so a secret that slips into a message from a
//! lower layer (a driver error quoting a connection string, say) is still masked.

use std::sync::Mutex;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// What a masked secret prints as.
pub const MASK: &str = "****";

/// Values that are committed in the repository as the local environment's defaults: they
/// are public, and masking them would mask ordinary words (the user and database names).
const PUBLIC_DEFAULTS: &[&str] = &["postgres"];

/// Remembers a secret so that [`redact`] masks it. Very short values are not masked: they
/// would mask ordinary words, and no real secret is that short.
pub(crate) fn register(secret: &str) {
    let secret = secret.trim();
    if secret.len() < 4 || PUBLIC_DEFAULTS.contains(&secret) {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    if !secrets.iter().any(|s| s == secret) {
        secrets.push(secret.to_string());
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers the password of a `scheme://user:password@host` URL, if it has one.
pub(crate) fn register_url_password(url: &str) {
    if let Ok(parsed) = url::Url::parse(url.trim()) {
        if let Some(password) = parsed.password() {
            register(password);
            let decoded: String = url::form_urlencoded::parse(format!("x={password}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            register(&decoded);
        }
    }
}

/// A URL for display: any `user:password@` part masked.
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some(MASK));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(not a URL)".to_string(),
    }
}

/// Whether a variable's name says it holds a secret.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    ["KEY", "SECRET", "PASSWORD", "TOKEN", "PASS"].iter().any(|word| name.contains(word))
}

/// `text` with every registered secret masked.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_values() {
        register("correct-horse-battery");
        register("abc");
        assert_eq!(redact("pw=correct-horse-battery; abc"), "pw=****; abc");
        assert!(is_secret_name("SUPABASE_SERVICE_ROLE_KEY"));
        assert!(!is_secret_name("NEXT_PUBLIC_SUPABASE_URL"));
    }
}
