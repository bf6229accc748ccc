//! Masking inside JSON: listed keys and allowlists at any depth, and under an allowlist the
//! object keys themselves, which are data too (`{"carol@real.example": "friend"}`).

use super::{JsonRule, JsonSpec, Masker, base32};

/// The leak sets' name for an object key (no JSON key is this: it holds a NUL).
pub(super) const KEYS: &str = "\0keys";

impl Masker {
    /// Masks a JSON document as `spec` says, at any depth. Returns the masked text and
    /// calls `seen(key, original, masked)` for the leak check with every string it writes
    /// under a masked key (key `""` for strings under no key; no original for a number or
    /// boolean it replaced). `distinct`: a unique index reads the column (say `(profile ->> 'handle')`),
    /// so pseudonyms take their collision-safe form.
    pub(crate) fn json(
        &self,
        text: &str,
        spec: &JsonSpec,
        distinct: bool,
        seen: &mut dyn FnMut(&str, Option<&str>, &str),
    ) -> Option<String> {
        let mut value: serde_json::Value = serde_json::from_str(text).ok()?;
        self.walk(&mut value, None, (spec, distinct), seen);
        Some(value.to_string())
    }

    /// `key`: the key the value sits under (array items inherit their array's).
    fn walk(
        &self,
        value: &mut serde_json::Value,
        key: Option<&str>,
        how: (&JsonSpec, bool),
        seen: &mut dyn FnMut(&str, Option<&str>, &str),
    ) {
        let (spec, distinct) = how;
        use serde_json::Value;
        match value {
            Value::Object(map) => {
                for (inner_key, inner) in map.iter_mut() {
                    self.walk(inner, Some(inner_key), how, seen);
                }
                if spec.others.is_some() {
                    *map = self.rename_keys(std::mem::take(map), spec, seen);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.walk(item, key, how, seen)),
            // Listed keys lose numbers and booleans too: a listed key is personal whatever
            // its type. The allowlist's others are about strings.
            Value::Number(_) | Value::Bool(_) => match key.and_then(|k| spec.keys.get(k)) {
                Some(JsonRule::Null) => *value = Value::Null,
                Some(_) => {
                    seen(key.unwrap_or_default(), None, "[redacted]");
                    *value = Value::String("[redacted]".into());
                }
                None => {}
            },
            // `""` stays, as an empty column value does.
            Value::String(original) if original.is_empty() => {}
            Value::String(original) => {
                let masked = match spec.rule_for(key) {
                    None => return,
                    Some(JsonRule::Null) => {
                        *value = Value::Null;
                        return;
                    }
                    Some(JsonRule::Redact) => Value::String("[redacted]".to_string()),
                    Some(JsonRule::Pseudonym(kind)) => Value::String(self.pseudonym(*kind, original, distinct)),
                };
                seen(key.unwrap_or_default(), Some(original), masked.as_str().unwrap_or_default());
                *value = masked;
            }
            Value::Null => {}
        }
    }

    /// Under an allowlist, an object's keys are data too (`{"carol@real.example":
    /// "friend"}`): every key neither allowed nor listed becomes a keyed pseudonym, so equal
    /// keys stay equal in every document and run, and distinct keys stay distinct. Each
    /// written key is reported under [`KEYS`] with its original, for the leak check.
    fn rename_keys(
        &self,
        map: serde_json::Map<String, serde_json::Value>,
        spec: &JsonSpec,
        seen: &mut dyn FnMut(&str, Option<&str>, &str),
    ) -> serde_json::Map<String, serde_json::Value> {
        let (kept, renamed): (Vec<_>, Vec<_>) = map
            .into_iter()
            .partition(|(key, _)| spec.allow.contains(key) || spec.keys.contains_key(key) || key.is_empty());
        let mut out: serde_json::Map<String, serde_json::Value> = kept.into_iter().collect();
        for (key, value) in renamed {
            // A pseudonym never takes another key's place (no duplicate keys, no value lost):
            // on the practically impossible collision it takes a suffix.
            let pseudonym = self.json_key(&key);
            let mut written = pseudonym.clone();
            let mut n = 1;
            while out.contains_key(&written) {
                n += 1;
                written = format!("{pseudonym}_{n}");
            }
            seen(KEYS, Some(&key), &written);
            out.insert(written, value);
        }
        out
    }

    /// The pseudonym of a JSON object key: `k_` and 70 bits of its keyed hash.
    pub(crate) fn json_key(&self, key: &str) -> String {
        format!("k_{}", base32(&self.digest("json_key", key.as_bytes())[..9]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage_sync::rules::Kind;

    #[test]
    fn empty_strings_stay_empty_under_every_kind_and_in_json_and_arrays() {
        let m = Masker::new("key-one-0123456789");
        for kind in Kind::ALL {
            assert_eq!(m.pseudonym(kind, "", true), "", "{}", kind.name());
        }
        let spec = JsonSpec { keys: Default::default(), others: Some(JsonRule::Redact), allow: Default::default() };
        let mut seen = 0;
        assert_eq!(m.json(r#"{"":["",""]}"#, &spec, false, &mut |_, _, _| seen += 1).unwrap(), r#"{"":["",""]}"#);
        assert_eq!(m.elements(Kind::Email, r#"{"",a}"#, &mut |_| seen += 1).unwrap().matches(r#""""#).count(), 1);
        assert_eq!(seen, 1, "only the non-empty element is a source value");
    }

    #[test]
    fn json_keys_outside_the_allowlist_become_keyed_pseudonyms() {
        let m = Masker::new("key-one-0123456789");
        let spec = JsonSpec {
            keys: [("email".to_string(), JsonRule::Pseudonym(Kind::Email))].into(),
            others: Some(JsonRule::Pseudonym(Kind::Text)),
            allow: ["theme".to_string()].into(),
        };
        let mut keys = Vec::new();
        let mut run = |text: &str| {
            m.json(text, &spec, false, &mut |key, original, written| {
                if key == KEYS {
                    keys.push((original.unwrap().to_string(), written.to_string()));
                }
            })
            .unwrap()
        };
        let one = run(r#"{"theme":"dark","email":"a@b.c","contacts":{"carol@real.example":"friend","bob":"x"}}"#);
        let two = run(r#"{"carol@real.example":1}"#);
        assert!(!one.contains("carol") && !one.contains("contacts") && !one.contains("friend"), "{one}");
        assert!(one.contains(r#""theme":"dark""#) && one.contains(r#""email":""#), "{one}");
        let carol = m.json_key("carol@real.example");
        assert!(one.contains(&carol) && two.contains(&carol), "equal keys stay equal: {one} {two}");
        assert_ne!(carol, m.json_key("bob"));
        assert_eq!(keys.len(), 4, "contacts, carol twice, bob: {keys:?}");
        assert!(keys.iter().all(|(original, written)| original != written));
        // A key that happens to be another's pseudonym keeps its place; the pseudonym moves.
        let taken = JsonSpec { allow: [m.json_key("bob")].into(), ..spec.clone() };
        let out = m.json(&format!(r#"{{"{}":1,"bob":2}}"#, m.json_key("bob")), &taken, false, &mut |_, _, _| {});
        let out: serde_json::Value = serde_json::from_str(&out.unwrap()).unwrap();
        assert_eq!(out.as_object().unwrap().len(), 2, "{out}");
        assert_eq!(out[format!("{}_2", m.json_key("bob"))], 2, "{out}");
        let other = Masker::new("key-two-0123456789");
        assert_ne!(carol, other.json_key("carol@real.example"), "keyed");
    }
}
