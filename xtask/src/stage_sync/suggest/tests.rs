//! Unit tests of the suggestions: names and types to rules, values that identify.

use super::*;

fn column(name: &str, category: Category, base: &str) -> Column {
    Column {
        name: name.into(),
        type_name: base.into(),
        not_null: false,
        generated: false,
        category,
        base_type: base.into(),
        wire: None,
    }
}

#[test]
fn names_suggest_rules() {
    let check = |name: &str, category: Category, base: &str, expected: &str| {
        assert_eq!(suggest(&column(name, category, base)), expected, "{name}");
    };
    check("emailAddress", Category::String, "text", "\"email\"");
    check("username", Category::String, "text", "\"text\"");
    check("spreadsheet_id", Category::String, "text", "\"uuid\"");
    check("googleAccountId", Category::String, "varchar", "\"uuid\"");
    check("credentialsJson", Category::String, "text", "\"null\"");
    check("token_expires_at", Category::DateTime, "timestamptz", "\"keep\"");
    check("avatar_url", Category::String, "text", "\"null\"");
    check("photo", Category::String, "text", "\"null\"");
    check("picture", Category::User, "bytea", "\"null\"");
    check("date_of_birth", Category::DateTime, "date", "{ rule = \"date_shift\", days = 30 }");
    check("birth_date", Category::DateTime, "date", "{ rule = \"date_shift\", days = 30 }");
    assert!(!suggest(&column("birth_time", Category::DateTime, "time")).contains("date_shift"));
    check("address_id", Category::Numeric, "int4", "\"keep\"");
    check("emails", Category::Array, "_text", "\"email\"");
    check("tags", Category::Array, "_text", "\"keep\"");
    assert!(
        is_key_like(&column("address_id", Category::Numeric, "int4"))
            && is_key_like(&column("userId", Category::User, "uuid"))
    );
    assert!(
        !is_key_like(&column("phone", Category::Numeric, "int8"))
            && !is_key_like(&column("spreadsheet_id", Category::String, "text"))
    );
    assert_eq!(words("googleAccountID_v2"), ["google", "account", "id", "v2"]);
    assert_eq!(toml_key("emailAddress"), "emailAddress");
    assert_eq!(toml_key("has space"), "\"has space\"");
}

#[test]
fn values_that_identify() {
    assert!(value_looks_personal("ann@clinic.com"));
    assert!(value_looks_personal("(555) 123-4567"));
    assert!(!value_looks_personal("Hygiene production"));
    assert!(!value_looks_personal("2024-01-01"));
    assert!(value_looks_identifying("1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"));
    assert!(value_looks_identifying("ya29.a0AfH6SMBx3kq"));
    assert!(value_looks_identifying("https://lh3.googleusercontent.com/a/photo123"));
    assert!(!value_looks_identifying("https://example.com"));
    assert!(!value_looks_identifying("2024-01-01T10:00:00.000Z"));
    assert!(!value_looks_identifying("D0120 periodic oral evaluation"));
    assert!(!value_looks_identifying("google_sheets"));
    assert!(value_looks_identifying("signin:203.0.113.7"));
    assert!(value_looks_identifying("ratelimit 2001:db8::ff00:42:8329"));
    assert!(!value_looks_identifying("version 1.2.3"));
    assert!(!value_looks_identifying("10:30:00"));
}

/// What a whole app holds, in the shapes public Prisma apps have (measured in the README):
/// free text, secrets, keys, configs, bytes, user agents and network addresses are masked;
/// keys to other rows, flags, counts and times whose names hold a personal word are not.
#[test]
fn a_whole_app_is_masked_and_its_harmless_columns_left_alone() {
    let text = |name: &str| column(name, Category::String, "text");
    let masked = [
        ("title", "\"text\""),
        ("subject", "\"text\""),
        ("message", "\"text\""),
        ("bio", "\"text\""),
        ("publicDescription", "\"text\""),
        ("rejectionReason", "\"text\""),
        ("customText", "\"text\""),
        ("answer", "\"text\""),
        ("typedSignature", "\"text\""),
        ("privateKey", "\"null\""),
        ("apiKey", "\"null\""),
        ("clientSecret", "\"null\""),
        ("twoFactorBackupCodes", "\"null\""),
        ("hashedKey", "\"null\""),
        ("smtpConfig", "\"null\""),
        ("userAgent", "\"null\""),
        ("user_agent", "\"null\""),
        ("ipAddress", "\"null\""),
        ("visitorIp", "\"null\""),
        ("brandingLogo", "\"null\""),
        ("banner", "\"null\""),
        ("signatureImageAsBase64", "\"null\""),
        ("originalFile", "\"null\""),
        ("stripeCustomerId", "\"uuid\""),
        ("clientId", "\"uuid\""),
        ("credentialId", "\"uuid\""),
        ("fileKey", "\"uuid\""),
    ];
    for (name, rule) in masked {
        assert_eq!(suggest(&text(name)), rule, "{name}");
    }
    let not_null = |mut c: Column| {
        c.not_null = true;
        c
    };
    assert_eq!(suggest(&column("document", Category::User, "bytea")), "\"null\"");
    assert_eq!(suggest(&not_null(column("document", Category::User, "bytea"))), "\"redact\"");
    assert_eq!(suggest(&not_null(column("credentialPublicKey", Category::User, "bytea"))), "\"redact\"");
    assert_eq!(suggest(&column("last_seen_from", Category::Other, "inet")), "\"null\"");
    let inet = not_null(column("source", Category::Other, "inet"));
    assert!(suggest(&inet) == "\"keep\"" && name_looks_personal(&inet), "a NOT NULL address is left to decide");
    for url in ["webhookUrl", "domain", "identifier", "recipient"] {
        assert!(suggest(&text(url)) == "\"keep\"" && name_looks_personal(&text(url)), "{url}: decide");
    }
    let harmless = [
        column("emailVerified", Category::DateTime, "timestamp"),
        column("emailQuota", Category::Numeric, "int4"),
        column("emailCount", Category::Numeric, "int4"),
        column("credentialBackedUp", Category::Boolean, "bool"),
        column("tokenExpiresAt", Category::DateTime, "timestamptz"),
        column("fileSize", Category::Numeric, "int8"),
        text("avatarImageId"),
        text("emailId"),
        text("token_type"),
        text("credentialDeviceType"),
        text("signatureLevel"),
        text("publicKey"),
        text("status"),
    ];
    for c in &harmless {
        assert_eq!(suggest(c), "\"keep\"", "{}", c.name);
        assert!(!name_looks_personal(c), "{} is not personal", c.name);
    }
    assert_eq!(suggest(&column("allowList", Category::Array, "_text")), "\"text\"");
    assert_eq!(suggest(&column("globalBlockList", Category::Array, "_text")), "\"text\"");
    assert!(name_looks_personal(&column("phone", Category::Numeric, "int8")));
    assert!(name_looks_personal(&column("birthDate", Category::DateTime, "date")));
}
