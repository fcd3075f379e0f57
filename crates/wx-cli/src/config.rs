//! Loading the configuration the same way in both binaries.

use std::path::Path;
use wx_steps::ValidatorConfig;
use wx_steps::config::ConfigError;

/// Defaults, then the TOML file (if any), then `WX_*` variables, then `--database-url`.
pub fn load(
    file: Option<&Path>,
    database_url: Option<&str>,
) -> Result<ValidatorConfig, ConfigError> {
    let mut config = ValidatorConfig::load(file)?;
    if let Some(url) = database_url {
        config.database_url = url.to_owned();
        config.validate()?;
    }
    Ok(config)
}
