//! The seashell home directory (`$SEASHELL_HOME`, else `~/.seashell`): where it is, creating it
//! 0700, and the default paths inside it. Only the environment is consulted, never the password
//! database.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::keys::{KeyError, files};

/// Environment variable naming the seashell home directory.
pub const HOME_ENV: &str = "SEASHELL_HOME";

/// `$SEASHELL_HOME`, else `$HOME/.seashell`; empty variables count as unset.
pub fn seashell_home() -> Result<PathBuf, KeyError> {
    home_from(std::env::var_os(HOME_ENV), std::env::var_os("HOME"))
}

/// [`seashell_home`], created with mode 0700 (parents too) if it does not exist yet.
pub fn ensure_home() -> Result<PathBuf, KeyError> {
    let home = seashell_home()?;
    files::create_private_dir(&home)?;
    Ok(home)
}

/// The default identity (private key) path: `<home>/id_rsa`. Does not create anything.
pub fn default_identity() -> Result<PathBuf, KeyError> {
    Ok(seashell_home()?.join("id_rsa"))
}

/// The home directory given the values of `SEASHELL_HOME` and `HOME`.
fn home_from(seashell_home: Option<OsString>, home: Option<OsString>) -> Result<PathBuf, KeyError> {
    let set = |value: Option<OsString>| value.filter(|v| !v.is_empty()).map(PathBuf::from);
    set(seashell_home)
        .or_else(|| set(home).map(|home| home.join(".seashell")))
        .ok_or(KeyError::NoHome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seashell_home_wins_over_home() {
        let got = home_from(Some("/srv/sh".into()), Some("/home/me".into())).unwrap();
        assert_eq!(got, PathBuf::from("/srv/sh"));
    }

    #[test]
    fn falls_back_to_dot_seashell_under_home() {
        let got = home_from(None, Some("/home/me".into())).unwrap();
        assert_eq!(got, PathBuf::from("/home/me/.seashell"));
        let got = home_from(Some("".into()), Some("/home/me".into())).unwrap();
        assert_eq!(got, PathBuf::from("/home/me/.seashell"));
    }

    #[test]
    fn no_home_at_all_is_an_error() {
        assert!(matches!(
            home_from(None, Some("".into())),
            Err(KeyError::NoHome)
        ));
    }
}
