//! Who holds which console: one client per console of a VM; `--force` takes it over (the
//! holder is told and disconnected, and its claim is released before the new one is made).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{DaemonError, Result};

/// How long a forced takeover waits for the holder to let go.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The consoles held, by (VM, alias).
#[derive(Default)]
pub(crate) struct Consoles {
    held: Mutex<HashMap<(String, String), Holder>>,
    next_id: AtomicU64,
}

struct Holder {
    id: u64,
    who: String,
    /// Set to `true` to disconnect the holder.
    kick: watch::Sender<bool>,
    /// Closes when the holder's [`Claim`] is dropped.
    released: watch::Receiver<()>,
}

/// A held console: released when dropped. [`Claim::kicked`] resolves when another client
/// took it over.
pub(crate) struct Claim {
    consoles: Arc<Consoles>,
    key: (String, String),
    id: u64,
    kicked: watch::Receiver<bool>,
    _released: watch::Sender<()>,
}

impl Claim {
    /// Resolves once a `--force` client takes the console over.
    pub(crate) async fn kicked(&mut self) {
        let _ = self.kicked.wait_for(|k| *k).await;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = self.consoles.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.get(&self.key).is_some_and(|h| h.id == self.id) {
            held.remove(&self.key);
        }
    }
}

impl Consoles {
    /// Claims console `alias` of `vm` for `who`. Held by someone else: refused (409), or
    /// with `force` that holder is disconnected first.
    pub(crate) async fn claim(
        self: &Arc<Self>,
        vm: &str,
        alias: &str,
        who: &str,
        force: bool,
    ) -> Result<Claim> {
        let key = (vm.to_string(), alias.to_string());
        loop {
            let mut released = {
                let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                match held.get(&key) {
                    None => {
                        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                        let (kick, kicked) = watch::channel(false);
                        let (tx, rx) = watch::channel(());
                        held.insert(
                            key.clone(),
                            Holder {
                                id,
                                who: who.to_string(),
                                kick,
                                released: rx,
                            },
                        );
                        return Ok(Claim {
                            consoles: self.clone(),
                            key,
                            id,
                            kicked,
                            _released: tx,
                        });
                    }
                    Some(h) if !force => {
                        return Err(DaemonError::Conflict(format!(
                            "console {alias} of VM '{vm}' is in use by {}: wait until it leaves, \
                             or take it over with `virtnet console {vm} --devname {alias} --force`",
                            h.who
                        )))
                    }
                    Some(h) => {
                        let _ = h.kick.send(true);
                        h.released.clone()
                    }
                }
            };
            // Err once the holder's claim is dropped (its sender gone).
            let gone = tokio::time::timeout(RELEASE_TIMEOUT, async {
                while released.changed().await.is_ok() {}
            })
            .await;
            if gone.is_err() {
                return Err(DaemonError::Internal(format!(
                    "console {alias} of VM '{vm}': its holder did not let go within {RELEASE_TIMEOUT:?}"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_force_takes_over() {
        let c = Arc::new(Consoles::default());
        let mut a = c.claim("vm", "serial0", "A", false).await.unwrap();
        let e = c.claim("vm", "serial0", "B", false).await.err().unwrap();
        assert_eq!(e.http_status(), 409);
        assert!(e.to_string().contains("in use by A"), "{e}");
        assert!(e.to_string().contains("--force"), "{e}");
        // Another console of the same VM is free.
        let _other = c.claim("vm", "serial1", "B", false).await.unwrap();
        let c2 = c.clone();
        let b = tokio::spawn(async move { c2.claim("vm", "serial0", "B", true).await });
        a.kicked().await;
        drop(a);
        let b = b.await.unwrap().unwrap();
        drop(b);
        c.claim("vm", "serial0", "C", false).await.unwrap();
    }
}
