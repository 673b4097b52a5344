//! One `sync` at a time per store: a PostgreSQL advisory lock (held by a connection of its own,
//! so it also ends when the process dies), or an exclusive `flock` on `<db>.lock` beside a SQLite
//! file (released by the kernel when the process dies).

use std::time::{Duration, Instant};

use sqlx::Connection;

use super::{Pool, Store, StoreError};

/// The advisory lock key: "tagwall" and 1.
const PG_KEY: i64 = 0x7461_6777_616c_6c01;

/// A held run lock; release it with [`RunLock::release`] (dropping also releases it).
pub struct RunLock {
    held: Held,
}

enum Held {
    File(std::fs::File),
    Postgres(sqlx::PgConnection),
    Nothing,
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunLock")
    }
}

impl RunLock {
    /// Releases the lock.
    pub async fn release(self) {
        match self.held {
            Held::Postgres(conn) => {
                // Closing the session ends its advisory locks.
                let _ = conn.close().await;
            }
            Held::File(file) => drop(file),
            Held::Nothing => {}
        }
    }
}

impl Store {
    /// Takes the store's run lock, waiting up to `wait` for another run to finish.
    pub async fn lock_run(&self, wait: Duration) -> Result<RunLock, StoreError> {
        let deadline = Instant::now() + wait;
        let busy = || StoreError::Busy {
            url: self.url.to_string(),
            waited: wait.as_secs(),
        };
        match &self.pool {
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await?.detach();
                loop {
                    let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                        .bind(PG_KEY)
                        .fetch_one(&mut conn)
                        .await?;
                    if got {
                        return Ok(RunLock {
                            held: Held::Postgres(conn),
                        });
                    }
                    if Instant::now() >= deadline {
                        let _ = conn.close().await;
                        return Err(busy());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Pool::Sqlite(_) => {
                let Some(db) = self.url.sqlite_file() else {
                    return Ok(RunLock {
                        held: Held::Nothing,
                    });
                };
                let mut path = db.into_os_string();
                path.push(".lock");
                match flock_wait(std::path::Path::new(&path), wait).await {
                    Ok(file) => Ok(RunLock {
                        held: Held::File(file),
                    }),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(busy()),
                    Err(e) => Err(StoreError::Open {
                        url: self.url.to_string(),
                        message: format!(
                            "could not open the lock file {}: {e}",
                            path.to_string_lossy()
                        ),
                    }),
                }
            }
        }
    }
}

/// Opens (creating) `path` and takes an exclusive `flock` on it, retrying until `wait` has
/// passed (then `WouldBlock`). The lock lasts as long as the returned file.
pub(super) async fn flock_wait(
    path: &std::path::Path,
    wait: Duration,
) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + wait;
    // 0600 whatever the umask: whoever can open a lock file can hold it and stop every run.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(file),
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
}
