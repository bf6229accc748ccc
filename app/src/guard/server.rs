//! The guard's pinned server: the first connection pins the endpoint it reached and the
//! server's identity, and finds out whether server sessions are shared (a transaction
//! pooler); every later connection, and every client program, goes there and must show
//! the same identity. A throwaway guard's server also proves it is a cluster this project
//! started.

use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use postgres::Client;

use super::{ClientArgs, Pin, THROWAWAY_MARKER, op};
use crate::{
    DatabaseUrl,
    address::Endpoint,
    connect::{self, Identity},
};

/// A connection to the pinned endpoint that must show the pinned identity; the first one
/// pins what it reached, and finds out whether the server session is shared.
pub(super) fn open(url: &DatabaseUrl, pin: &OnceLock<Pin>) -> Result<Client> {
    if let Some(pinned) = pin.get() {
        let opened = connect::open_at(url, &pinned.endpoint, url.startup_timeout())?;
        if opened.identity != pinned.identity {
            bail!(
                "the server at {} is not the one this command checked a moment ago (it reports another {}): refused\nhint: something between here and the database changed (a tunnel, a proxy, a failover); run the command again",
                pinned.endpoint,
                differs(&pinned.identity, &opened.identity)
            );
        }
        return Ok(opened.client);
    }
    let mut opened = connect::open_first(url)?;
    refuse_twins(url, &opened)?;
    let shared =
        url.pooler() == Some(crate::database_url::Pooler::Transaction) || connect::shares_sessions(url, &mut opened)?;
    let _ = pin.set(Pin { endpoint: opened.endpoint.clone(), identity: opened.identity.clone(), shared });
    Ok(opened.client)
}

/// A name that resolves to several addresses is one server only if every address that
/// answers shows the same identity: `localhost` can be `::1` and `127.0.0.1`, with two
/// servers on one port.
fn refuse_twins(url: &DatabaseUrl, first: &connect::Opened) -> Result<()> {
    let Endpoint::Tcp { name, .. } = &first.endpoint else { return Ok(()) };
    let timeout = url.startup_timeout().min(std::time::Duration::from_secs(2));
    for other in url.endpoints() {
        let twin = matches!(&other, Endpoint::Tcp { name: n, .. } if n == name) && other != first.endpoint;
        if !twin {
            continue;
        }
        if let Ok(answer) = connect::open_at(url, &other, timeout) {
            if answer.identity != first.identity {
                bail!(
                    "{name} resolves to several addresses where different servers answer ({} and {}): refused\nhint: put the one address you mean in DATABASE_URL",
                    first.endpoint,
                    other
                );
            }
        }
    }
    Ok(())
}

pub(super) fn differs(a: &Identity, b: &Identity) -> &'static str {
    if a.system != b.system {
        "system identifier"
    } else if a.started != b.started {
        "start time"
    } else {
        "database"
    }
}

pub(super) fn refuse_shared<O: op::Op>(pin: &OnceLock<Pin>, why: &str) -> Result<()> {
    let Some(pinned) = pin.get().filter(|p| p.shared) else { return Ok(()) };
    bail!(
        "{} hands one server session to several clients (a transaction pooler): {} is refused, {why}\nhint: use the direct host (db.<ref>.supabase.co:5432) or the pooler's session mode (port 5432) for this command",
        pinned.endpoint,
        O::OPERATION
    )
}

pub(super) fn client_args<O: op::Op>(url: &DatabaseUrl, pin: &OnceLock<Pin>) -> Result<ClientArgs> {
    if pin.get().is_none() {
        drop(open(url, pin)?);
    }
    refuse_shared::<O>(pin, "because client programs set session state that the pooler would hand to other clients")?;
    let pinned = pin.get().context("no pinned server")?;
    Ok(ClientArgs { conninfo: url.conninfo_for(&pinned.endpoint), password: url.password() })
}

/// A throwaway cluster shows it is the project's own: its data folder's parent holds the
/// marker file that the project writes when it creates such a cluster.
pub(super) fn prove_throwaway(client: &mut Client, url: &DatabaseUrl) -> Result<()> {
    let refused = || {
        anyhow::anyhow!(
            "the server at {} is not a throwaway cluster this project started: refused\nhint: throwaway guards are for the clusters that tests and benchmarks start themselves",
            url.address()
        )
    };
    let rows = client.simple_query("select current_setting('data_directory')").map_err(|_| refused())?;
    let data_dir = rows
        .iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(row) => row.get(0).map(std::path::PathBuf::from),
            _ => None,
        })
        .ok_or_else(refused)?;
    let marker = data_dir.parent().map(|p| p.join(THROWAWAY_MARKER));
    if !url.is_on_this_machine() || !marker.is_some_and(|m| m.is_file()) {
        return Err(refused());
    }
    Ok(())
}
