//! Store errors.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong talking to the database. Messages say what to do next; they never contain a
/// password from the database URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend.
    #[error(
        "unsupported database URL `{0}`: use postgres://user@host:port/db or sqlite://path/to/file.sqlite3 (a file path needs the sqlite:// prefix)"
    )]
    UnsupportedUrl(String),
    /// The database server cannot be reached or refused the connection.
    #[error("cannot connect to {url}: {message}. Is the server running and the URL right?")]
    Connect {
        /// The URL with any password removed.
        url: String,
        /// The driver's message.
        message: String,
    },
    /// The URL's connection settings cannot work (e.g. `sslmode=verify-full` without a CA, an
    /// unreadable CA file, an unknown parameter).
    #[error("database settings in {url} are wrong: {message}")]
    Settings {
        /// The URL with any password removed.
        url: String,
        /// What is wrong and what to change.
        message: String,
    },
    /// The TLS handshake failed or the server's certificate was refused.
    #[error("TLS connection to {url} failed: {message}")]
    Tls {
        /// The URL with any password removed.
        url: String,
        /// Why, in words an operator can act on.
        message: String,
    },
    /// The database the URL names does not exist (a PostgreSQL database, an SQLite file or its
    /// directory). wx creates no database except through `Db::open` (the `migrate` and `run`
    /// commands), and never a PostgreSQL one.
    #[error("database {url} does not exist: {message}")]
    DatabaseMissing {
        /// The URL with any password removed.
        url: String,
        /// What is missing and what to do.
        message: String,
    },
    /// The database exists but holds no wx schema.
    #[error(
        "{url} is not a wx database (it has no migrations table): check the URL, or create the schema with `wx-validator migrate`"
    )]
    NotMigrated {
        /// The URL with any password removed.
        url: String,
    },
    /// The database's schema is older than this program's.
    #[error(
        "the schema of {url} is out of date ({} migration(s) pending: {}): run `wx-validator migrate`", pending.len(), pending.join(", ")
    )]
    SchemaBehind {
        /// The URL with any password removed.
        url: String,
        /// Versions of the migrations not yet applied.
        pending: Vec<String>,
    },
    /// The database was migrated by a newer wx than this program.
    #[error(
        "the schema of {url} is newer than this program (unknown migration(s): {}): upgrade wx", unknown.join(", ")
    )]
    SchemaAhead {
        /// The URL with any password removed.
        url: String,
        /// Applied versions this program does not know.
        unknown: Vec<String>,
    },
    /// A migration failed; the database is left at the last migration that succeeded.
    #[error(
        "database migration failed on {url}: {message}. Fix the database (or restore a backup) and start again"
    )]
    Migration {
        /// The URL with any password removed.
        url: String,
        /// The migration error.
        message: String,
    },
    /// No pooled connection became free in time.
    #[error("no database connection available: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    /// A row holds a value wx cannot read (e.g. an unknown status text).
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A caller passed a value the store refuses (e.g. a NaN score).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}

impl StoreError {
    /// Whether the error is a unique-constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// Whether retrying the same operation may succeed (busy database, serialization conflict,
    /// lost connection).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Pool(_) | StoreError::Connect { .. } => true,
            StoreError::Query(DieselError::DatabaseError(kind, info)) => {
                matches!(
                    kind,
                    DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::ClosedConnection
                ) || info.message().contains("database is locked")
            }
            StoreError::Query(DieselError::BrokenTransactionManager) => true,
            _ => false,
        }
    }
}

/// Removes the password from a database URL (for messages, and for configuration snapshots
/// stored in the database).
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_removed_from_urls() {
        assert_eq!(
            super::redact_url("postgres://wx:hunter2@db:5432/wx"),
            "postgres://wx@db:5432/wx"
        );
        assert_eq!(super::redact_url("postgres://db/wx"), "postgres://db/wx");
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
