//! Opening a store: the backend from the URL, connection settings, embedded migrations, and a
//! first PostgreSQL connection that names what is wrong.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::url::{Backend, DbUrl};
use super::{Pool, Store, StoreError};

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the store at `url`.
    pub async fn open(url: &DbUrl) -> Result<Store, StoreError> {
        let open_err = |e: sqlx::Error| StoreError::Open {
            url: url.to_string(),
            message: e.to_string(),
        };
        let migrate_err = |e: sqlx::migrate::MigrateError| StoreError::Migrate {
            url: url.to_string(),
            message: e.to_string(),
        };
        let pool = match url.backend() {
            Some(Backend::Sqlite) => {
                let options = SqliteConnectOptions::from_str(url.expose())
                    .map_err(open_err)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(60))
                    .foreign_keys(true)
                    // A first import writes ~90,000 interval rows into three indexes: with
                    // SQLite's default 2 MB page cache they no longer fit, and every insert
                    // into the prefix index misses. Up to 64 MB per connection, used only as
                    // needed.
                    .pragma("cache_size", "-65536")
                    // An import writes ~1,600 pages to the WAL, so SQLite's default checkpoint
                    // at 1,000 pages copied them back after nearly every import, in the
                    // importing transaction. At 8,192 pages (32 MiB) a backfill checkpoints
                    // every few files and each hot page once; the limit truncates the WAL back
                    // to 32 MiB after a checkpoint.
                    .pragma("wal_autocheckpoint", "8192")
                    .pragma("journal_size_limit", "33554432")
                    // A multi-row statement inside a transaction keeps a statement journal
                    // (the pages it changed, to undo it alone if it fails): past 64 KiB SQLite
                    // spills it to a temporary file, which cost a backfill ~4% of its CPU in
                    // writes. In memory it is a copy of a few hundred pages at most.
                    .pragma("temp_store", "memory");
                // Two processes opening a new store would both switch it to WAL and apply the
                // migrations: they take turns with an flock on `<db>.open.lock`, from before the
                // first connection until migrated. Never a handle on the database file itself:
                // SQLite's locks are POSIX locks, which belong to the process and inode, so
                // closing any other handle on that file would drop them.
                let _turn = match url.sqlite_file() {
                    Some(path) => {
                        let mut lock = path.clone().into_os_string();
                        lock.push(".open.lock");
                        let lock = std::path::PathBuf::from(lock);
                        Some(
                            super::lock::flock_wait(&lock, Duration::from_secs(60))
                                .await
                                .map_err(|e| StoreError::Open {
                                    url: url.to_string(),
                                    message: format!(
                                        "could not lock {} to open the store: {e}",
                                        lock.display()
                                    ),
                                })?,
                        )
                    }
                    None => None,
                };
                if let Some(path) = url.sqlite_file() {
                    create_private(&path).map_err(|e| StoreError::Open {
                        url: url.to_string(),
                        message: format!("could not create {}: {e}", path.display()),
                    })?;
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                sqlx::migrate!("./migrations/sqlite")
                    .run(&pool)
                    .await
                    .map_err(migrate_err)?;
                Pool::Sqlite(pool)
            }
            Some(Backend::Postgres) => {
                let options = PgConnectOptions::from_str(url.expose()).map_err(open_err)?;
                pg_reachable(url, &options).await?;
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(15))
                    .connect_with(options)
                    .await
                    .map_err(open_err)?;
                sqlx::migrate!("./migrations/postgres")
                    .run(&pool)
                    .await
                    .map_err(migrate_err)?;
                Pool::Postgres(pool)
            }
            None => {
                return Err(StoreError::Open {
                    url: url.to_string(),
                    message: "unknown scheme".into(),
                })
            }
        };
        Ok(Store {
            pool,
            url: url.clone(),
        })
    }
}

/// How long the first PostgreSQL connection may take.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One direct connection before the pool: a refused port, an unknown host, a TLS or password
/// problem is reported at once and by name, where the pool would retry until its timeout.
async fn pg_reachable(url: &DbUrl, options: &PgConnectOptions) -> Result<(), StoreError> {
    use sqlx::Connection;
    let server = format!("{}:{}", options.get_host(), options.get_port());
    let fail = |message: String| StoreError::Open {
        url: url.to_string(),
        message,
    };
    let conn = tokio::time::timeout(PG_CONNECT_TIMEOUT, sqlx::PgConnection::connect_with(options))
        .await
        .map_err(|_| {
            fail(format!(
                "PostgreSQL at {server} did not answer within {} s: check the host, port and firewall",
                PG_CONNECT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| match e {
            sqlx::Error::Io(io) if io.to_string().contains("certificate") => fail(format!(
                "TLS to PostgreSQL at {server} failed: {io}: check sslmode and sslrootcert in the store URL"
            )),
            sqlx::Error::Io(io) => fail(format!(
                "could not reach PostgreSQL at {server}: {io}: check that the server runs and the host and port in the store URL"
            )),
            sqlx::Error::Tls(tls) => fail(format!(
                "TLS to PostgreSQL at {server} failed: {tls}: check sslmode and sslrootcert in the store URL"
            )),
            other => fail(format!("PostgreSQL at {server}: {other}")),
        })?;
    let _ = conn.close().await;
    Ok(())
}

/// Creates a new SQLite database file as 0600 whatever the umask (SQLite gives its `-wal` and
/// `-shm` files the database's mode); an existing file is left as it is.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}
