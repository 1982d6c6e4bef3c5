//! The REPL's `put` and `get` lines: parsed into a [`ReplTransfer`] (scp-like flags, shell
//! quoting) and run as one [`FileTransfer`] over the REPL's session.

use std::path::PathBuf;

use super::ClientError;
use super::console::RemoteConsole;
use super::transfer::{FileTransfer, Interrupts, TransferError, TransferOptions};
use crate::shown::shown;

/// A `put` or `get` line of the REPL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplTransfer {
    upload: bool,
    options: TransferOptions,
    from: String,
    to: Option<String>,
}

/// REPL usage.
pub const REPL_USAGE: &str = "usage: put [-r] [-p] [--resume] LOCAL [REMOTE] | \
                              get [-r] [-p] [--resume] REMOTE [LOCAL]";

impl ReplTransfer {
    /// `None` if `line` is not a `put`/`get` line; else the parsed command or a usage error.
    pub fn parse(line: &str) -> Option<Result<Self, String>> {
        let first = line.split_whitespace().next()?;
        let upload = match first {
            "put" => true,
            "get" => false,
            _ => return None,
        };
        Some(Self::parse_words(line, upload))
    }

    fn parse_words(line: &str, upload: bool) -> Result<Self, String> {
        let words =
            shlex::split(line).ok_or_else(|| format!("cannot split `{line}` into words"))?;
        let mut options = TransferOptions::default();
        let mut paths = Vec::new();
        let mut flags_done = false;
        for word in words.into_iter().skip(1) {
            match word.as_str() {
                "-r" if !flags_done => options.recursive = true,
                "-p" if !flags_done => options.preserve_times = true,
                "--resume" if !flags_done => options.resume = true,
                "--" if !flags_done => flags_done = true,
                flag if !flags_done && flag.starts_with('-') => {
                    return Err(format!("unknown option {flag}; {REPL_USAGE}"));
                }
                _ => paths.push(word),
            }
        }
        let mut paths = paths.into_iter();
        match (paths.next(), paths.next(), paths.next()) {
            (Some(from), to, None) => Ok(Self {
                upload,
                options,
                from,
                to,
            }),
            _ => Err(REPL_USAGE.to_owned()),
        }
    }

    /// Runs it on `console`; returns the status for the REPL (0, 1, or 128+N when
    /// interrupted). Only a broken session is an error.
    pub async fn run(
        &self,
        console: &mut RemoteConsole,
        host: &str,
        interrupts: Interrupts,
    ) -> Result<u8, ClientError> {
        let mut transfer = FileTransfer::new(console, host, self.options, interrupts);
        let result = if self.upload {
            let dest = self.to.as_deref().unwrap_or(".");
            transfer.put_all(&[PathBuf::from(&self.from)], dest).await
        } else {
            let dest = PathBuf::from(self.to.as_deref().unwrap_or("."));
            transfer
                .get_all(std::slice::from_ref(&self.from), &dest)
                .await
        };
        match result {
            Ok(true) => Ok(0),
            Ok(false) => Ok(1),
            Err(TransferError::Session(err)) => Err(err),
            Err(err) => {
                eprintln!("seashell: {}", shown(&err.to_string()));
                Ok(err.exit_code())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repl_lines() {
        assert_eq!(ReplTransfer::parse("ls -l"), None);
        assert_eq!(ReplTransfer::parse("   "), None);
        let put = ReplTransfer::parse("put -r -p 'a b' dest")
            .unwrap()
            .unwrap();
        assert!(put.upload && put.options.recursive && put.options.preserve_times);
        assert_eq!(
            (put.from.as_str(), put.to.as_deref()),
            ("a b", Some("dest"))
        );
        let get = ReplTransfer::parse("get --resume -- -odd")
            .unwrap()
            .unwrap();
        assert!(!get.upload && get.options.resume);
        assert_eq!((get.from.as_str(), get.to), ("-odd", None));
        assert!(ReplTransfer::parse("put").unwrap().is_err());
        assert!(ReplTransfer::parse("put a b c").unwrap().is_err());
        assert!(ReplTransfer::parse("get -x a").unwrap().is_err());
        assert!(ReplTransfer::parse("get 'a").unwrap().is_err());
    }
}
