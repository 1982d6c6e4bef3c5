//! `seashell keygen`, `seashell fingerprint` and `seashell known-hosts forget`: flags in,
//! calls on [`seashell::keys`], and the lines a person needs to see out (paths, `SHA256:`
//! fingerprints, skipped lines). Key formats, defaults and checks stay in the library.

use std::path::PathBuf;

use seashell::cli::{FingerprintArgs, KeygenArgs};
use seashell::client::dest::Destination;
use seashell::keys::keygen::{self, KeyPairPlan, NewPassphrase};
use seashell::keys::private::PassphraseSource;
use seashell::keys::{KeyError, home, known_hosts};
use seashell::shown::shown;

/// Runs `seashell keygen`: makes a key pair and prints where it went and its fingerprint;
/// with `-y`, prints the public line of an existing private key instead.
pub fn keygen(args: &KeygenArgs) -> Result<(), KeyError> {
    if args.public_of
        && let Some(path) = &args.file
    {
        let source = PassphraseSource::from_flag(args.passphrase_file.as_deref());
        println!("{}", keygen::public_line(path, &source)?);
        return Ok(());
    }
    let plan = KeyPairPlan::new(
        args.file.clone(),
        args.bits,
        args.comment.clone(),
        args.force,
    )?;
    let passphrase = keygen::new_passphrase(&passphrase_choice(args))?;

    eprintln!("Generating a {}-bit RSA key pair...", plan.bits);
    let made = plan.make(passphrase.as_ref().map(|p| p.as_slice()))?;
    println!(
        "Your identification has been saved in {}",
        made.private_path.display()
    );
    println!(
        "Your public key has been saved in {}",
        made.public_path.display()
    );
    println!(
        "The key fingerprint is {} {}",
        made.fingerprint, made.comment
    );
    Ok(())
}

/// `--passphrase-file`, else none with `--no-passphrase`, else ask.
fn passphrase_choice(args: &KeygenArgs) -> NewPassphrase {
    match &args.passphrase_file {
        Some(file) => NewPassphrase::File(file.clone()),
        None if args.no_passphrase => NewPassphrase::None,
        None => NewPassphrase::AskTwice,
    }
}

/// Runs `seashell fingerprint FILE`: one `SHA256:... label` line per key in the file (for a
/// certificate, its fields after it), after a warning on stderr for each line skipped. Labels
/// and fields are the file's text, printed [`shown`].
pub fn fingerprint(args: &FingerprintArgs) -> Result<(), KeyError> {
    let path = args.file.as_path();
    let source = PassphraseSource::from_flag(args.passphrase_file.as_deref());
    let found = keygen::fingerprints(path, &source, super::ca::now())?;
    for warning in &found.warnings {
        eprintln!("seashell: warning: {}: {warning}", path.display());
    }
    for line in found.into_lines()? {
        println!("{}", shown(&line));
    }
    Ok(())
}

/// Runs `seashell known-hosts forget HOST[:PORT]` (the port defaults as for every other
/// command): removes every key pinned for it and says how many went.
pub fn forget(host: &str, file: Option<PathBuf>) -> Result<(), KeyError> {
    let path = match file {
        Some(path) => path,
        None => home::seashell_home()?.join("known_hosts"),
    };
    let bad = || KeyError::BadHostPort(host.to_owned());
    let dest = Destination::parse(host, None).map_err(|_| bad())?;
    let canonical = known_hosts::canonical_host_port(&dest.host_port()).ok_or_else(bad)?;
    let removed = known_hosts::forget(&path, &canonical)?;
    println!(
        "removed {removed} key(s) for {canonical} from {}",
        path.display()
    );
    Ok(())
}
