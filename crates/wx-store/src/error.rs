//! Store errors.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What went wrong talking to the database. Messages say what to do next; they never contain a
/// password from the database URL.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported backend.
    #[error(
        "unsupported database URL `{0}`: use postgres://user@host:port/db or sqlite://path/to/file.sqlite3"
    )]
    UnsupportedUrl(String),
    /// The database cannot be reached or refused the connection.
    #[error("cannot connect to {url}: {message}. Is the server running and the URL right?")]
    Connect {
        /// The URL with any password removed.
        url: String,
        /// The driver's message.
        message: String,
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

/// Removes the password from a database URL for messages.
pub(crate) fn redact_url(url: &str) -> String {
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
