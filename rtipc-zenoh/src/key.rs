//! The Zenoh key expressions the bridge uses: one per channel,
//! `rtipc/<prefix>/<segment>/<channel>`, for its samples, its queryable (the description, and a
//! state channel's latest value) and its liveliness token.

use crate::BridgeError;

/// The first chunk of every key the bridge uses.
pub const ROOT: &str = "rtipc";

/// The key of channel `channel` of segment `segment` under `prefix`.
pub fn channel_key(prefix: &str, segment: &str, channel: &str) -> String {
    format!("{ROOT}/{prefix}/{segment}/{channel}")
}

/// Checks that `s` can stand in a key expression as `what`: not empty, no empty chunk (a
/// leading, trailing or doubled `/`), none of Zenoh's special characters `*`, `$`, `?`, `#`,
/// no chunk that starts with `@` (Zenoh reserves them), and, unless `slashes`, no `/` at all.
pub fn check_part(what: &str, s: &str, slashes: bool) -> Result<(), BridgeError> {
    let refuse = |why: &str| Err(BridgeError::Config(format!("{what} `{s}` {why}")));
    if s.is_empty() {
        return refuse("is empty");
    }
    if let Some(c) = s.chars().find(|c| matches!(c, '*' | '$' | '?' | '#')) {
        return refuse(&format!(
            "contains `{c}`, which has a meaning in a Zenoh key expression"
        ));
    }
    if !slashes && s.contains('/') {
        return refuse("contains `/`");
    }
    if s.split('/').any(str::is_empty) {
        return refuse("has an empty chunk (a leading, trailing or doubled `/`)");
    }
    if s.split('/').any(|c| c.starts_with('@')) {
        return refuse("has a chunk that starts with `@`, which Zenoh reserves");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_join_the_parts_and_refuse_what_zenoh_would_read_otherwise() {
        assert_eq!(
            channel_key("lab/a", "robot", "arm/joints"),
            "rtipc/lab/a/robot/arm/joints"
        );
        assert!(check_part("a channel", "arm/joints", true).is_ok());
        for bad in [
            "", "a*", "a/$b", "a?", "#", "/a", "a/", "a//b", "@x", "a/@b",
        ] {
            let e = check_part("a channel", bad, true).unwrap_err().to_string();
            assert!(e.contains(&format!("a channel `{bad}`")), "{e}");
        }
        let e = check_part("a segment", "a/b", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("contains `/`"), "{e}");
    }
}
