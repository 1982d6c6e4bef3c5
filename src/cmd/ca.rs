//! `seashell ca sign` and `seashell ca show`: flags in, calls on [`seashell::keys::ca`], and
//! what ssh-keygen -s and -L print out (what was signed, where it went; a certificate's
//! fields). Every text that comes from a file (names, options, comments) is printed through
//! [`shown`]; defaults and checks stay in the library.

use std::time::{SystemTime, UNIX_EPOCH};

use seashell::cli::CaSignArgs;
use seashell::keys::KeyError;
use seashell::keys::ca::{self, SignRequest, Validity};
use seashell::keys::cert::{CertKind, CertRefusal, format_time};
use seashell::keys::private::PassphraseSource;
use seashell::shown::shown;

/// Runs `seashell ca sign`: writes the certificate and says on stderr what was signed.
pub fn sign(args: &CaSignArgs) -> Result<(), KeyError> {
    let validity = match (args.valid, args.valid_until) {
        (Some(secs), _) => Validity::For(secs),
        (None, until) => Validity::Window {
            from: args.valid_from,
            // clap requires --valid or --valid-until.
            until: until.unwrap_or_default(),
        },
    };
    let request = SignRequest {
        ca: args.ca.clone(),
        passphrase: PassphraseSource::from_flag(args.passphrase_file.as_deref()),
        key: args.key.clone(),
        kind: if args.host {
            CertKind::Host
        } else {
            CertKind::User
        },
        name: args.name.clone(),
        serial: args.serial,
        validity,
        options: args.options.clone(),
    };
    let now = now();
    let signed = ca::sign(&request, now)?;
    let fields = signed.cert.fields();
    let (what, name_label) = match fields.kind {
        CertKind::User => ("user", "name"),
        CertKind::Host => ("host", "hosts"),
    };
    let options = if fields.options.is_empty() {
        String::new()
    } else {
        format!(" options {}", shown(&fields.options))
    };
    eprintln!(
        "Signed {what} key {}: {name_label} \"{}\" serial {} valid from {} to {}{options}",
        shown(&signed.path.display().to_string()),
        shown(&fields.name),
        fields.serial,
        format_time(fields.valid_after),
        format_time(fields.valid_before),
    );
    if signed.cert.check_time(now) == Err(CertRefusal::Expired) {
        eprintln!("seashell: warning: this certificate has already expired");
    }
    Ok(())
}

/// Runs `seashell ca show CERT`: the certificate's fields, one `label: value` line each.
pub fn show(file: &std::path::Path) -> Result<(), KeyError> {
    let cert = ca::load_certificate(file)?;
    for line in ca::describe_lines(&cert, now()) {
        println!("{}", shown(&line));
    }
    Ok(())
}

/// The system clock in Unix seconds (0 if it is set before 1970).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}
