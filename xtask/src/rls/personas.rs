//! The personas the access matrix probes as, found in the data model: `anon`; a signed-in
//! user with no membership; a member of tenant A in each of the app's member roles (the
//! labels of the membership table's enum column); a suspended member (its `active` column
//! false); `service_role`. The membership table is the table with a foreign key to the
//! tenant table and one to the users (`auth.users`, or a table keyed to it). Each signed-in
//! persona gets its own `auth.users` row, user row and membership, planted like the probe rows.

use anyhow::Result;
use postgres::Transaction;
use serde_json::{Map, Value, json};

use super::{catalog::Table, probe_rows::Planted};

const AUTH_USERS: &str = "auth.users";

/// What a persona is, for the rules: members of A may see A's rows, nobody else may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Anon,
    SignedIn,
    Member,
    Suspended,
    Service,
}

#[derive(Clone, Debug)]
pub(crate) struct Persona {
    pub name: String,
    /// The database role the API would `set local role` to.
    pub role: &'static str,
    pub kind: Kind,
    /// `request.jwt.claims`, as JSON.
    pub claims: String,
}

/// The membership table and its columns, as found in the catalog.
struct Membership<'t> {
    table: &'t Table,
    /// The user table the membership points at, and (when it is not `auth.users`) its
    /// column holding the `auth.users` id.
    users: &'t Table,
    auth_column: Option<String>,
    role_column: Option<(String, Vec<String>)>,
    active_column: Option<String>,
}

/// The personas, with their rows planted (tenant A's rows must be planted already).
pub(super) fn plant(tx: &mut Transaction, tables: &[Table], root: &str, planted: &mut Planted) -> Result<Vec<Persona>> {
    let membership = find(tables, root);
    let mut personas = vec![Persona {
        name: "anon".into(),
        role: "anon",
        kind: Kind::Anon,
        claims: json!({"role": "anon"}).to_string(),
    }];
    let mut signed_in = |label: String, kind: Kind| -> Result<Persona> {
        // The snapshot separates its fields by spaces.
        let name: String = label.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
        let auth_id = planted.uuid();
        if let Some(auth) = tables.iter().find(|t| t.name == AUTH_USERS) {
            planted.plant(tx, auth, (&name, &name), &object([("id", json!(auth_id))]))?;
        }
        if let Some(m) = &membership {
            if let Some(column) = &m.auth_column {
                planted.plant(tx, m.users, (&name, &name), &object([(column.as_str(), json!(auth_id))]))?;
            }
            let mut overrides = Map::new();
            match (kind, &m.role_column) {
                (Kind::Member, Some((column, _))) => {
                    overrides.insert(column.clone(), json!(label));
                }
                (Kind::Suspended, Some((column, labels))) => {
                    overrides.insert(column.clone(), json!(labels[0]));
                }
                _ => {}
            }
            if let (Some(column), Kind::Member | Kind::Suspended) = (&m.active_column, kind) {
                overrides.insert(column.clone(), json!(kind == Kind::Member));
            }
            if matches!(kind, Kind::Member | Kind::Suspended) {
                planted.plant(tx, m.table, (&name, &name), &overrides)?;
            }
        }
        let claims = json!({"sub": auth_id, "role": "authenticated", "aud": "authenticated"}).to_string();
        Ok(Persona { name, role: "authenticated", kind, claims })
    };
    personas.push(signed_in("authenticated".into(), Kind::SignedIn)?);
    match membership.as_ref().map(|m| (&m.role_column, &m.active_column)) {
        Some((Some((_, labels)), active)) => {
            for label in labels {
                personas.push(signed_in(label.clone(), Kind::Member)?);
            }
            if active.is_some() {
                personas.push(signed_in("suspended".into(), Kind::Suspended)?);
            }
        }
        Some((None, active)) => {
            personas.push(signed_in("member".into(), Kind::Member)?);
            if active.is_some() {
                personas.push(signed_in("suspended".into(), Kind::Suspended)?);
            }
        }
        None => {}
    }
    personas.push(Persona {
        name: "service_role".into(),
        role: "service_role",
        kind: Kind::Service,
        claims: json!({"role": "service_role"}).to_string(),
    });
    Ok(personas)
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The membership table: a foreign key to the tenant table and one to the users.
fn find<'t>(tables: &'t [Table], root: &str) -> Option<Membership<'t>> {
    let users = |name: &str| -> Option<(&'t Table, Option<String>)> {
        let table = tables.iter().find(|t| t.name == name)?;
        if name == AUTH_USERS {
            return Some((table, None));
        }
        let fk = table.foreign_keys.iter().find(|fk| fk.to == AUTH_USERS && fk.columns.len() == 1)?;
        Some((table, Some(fk.columns[0].clone())))
    };
    let candidates = tables.iter().filter(|t| t.exposed && t.name != root).filter_map(|table| {
        let tenant = table.foreign_keys.iter().find(|fk| fk.to == root)?;
        let (user_fk, (users, auth_column)) = table.foreign_keys.iter().find_map(|fk| Some((fk, users(&fk.to)?)))?;
        let keys: Vec<&String> = table.foreign_keys.iter().flat_map(|fk| &fk.columns).collect();
        let role_column = table
            .columns
            .iter()
            .find(|c| !c.enum_labels.is_empty() && !keys.contains(&&c.name))
            .map(|c| (c.name.clone(), c.enum_labels.clone()));
        let active_column = table
            .columns
            .iter()
            .find(|c| c.category == 'B' && (c.name.contains("active") || c.name.contains("enabled")))
            .map(|c| c.name.clone());
        // A membership is one per user and tenant, and names its user; a table that merely
        // may point at a user (a provider's optional login) ranks lower.
        let pair: Vec<&String> = user_fk.columns.iter().chain(&tenant.columns).collect();
        let unique = table.constraints.values().any(|c| c.len() == pair.len() && pair.iter().all(|p| c.contains(p)));
        let required = user_fk.columns.iter().all(|c| table.columns.iter().any(|col| &col.name == c && col.not_null));
        let score = 4 * usize::from(unique)
            + 2 * usize::from(required)
            + usize::from(role_column.is_some())
            + usize::from(active_column.is_some());
        Some((score, Membership { table, users, auth_column, role_column, active_column }))
    });
    candidates
        .fold(None, |best: Option<(usize, Membership)>, (score, m)| match best {
            Some((top, _)) if top >= score => best,
            _ => Some((score, m)),
        })
        .map(|(_, m)| m)
}
