//! The man pages in `docs/man/` are generated from the clap definitions (`clap_mangen`, one
//! page per subcommand) and must be in step with them: this test renders them again and
//! compares, byte for byte. After changing a flag or its help, write them anew with
//! `SEASHELL_WRITE_MAN=1 cargo test --test main man::` (README says so) and commit the
//! result.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use clap::CommandFactory;
use seashell::cli::Cli;

/// Every page, by file name, as clap_mangen renders it. The pages show the version alone,
/// not `--version`'s crypto provider: they are the same for both builds.
fn rendered() -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let command = Cli::command().long_version(None::<&str>);
    clap_mangen::generate_to(command, dir.path()).unwrap();
    pages_in(dir.path())
}

fn pages_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "1"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect()
}

#[test]
fn man_pages_are_in_step_with_the_command_line() {
    let committed_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
    let fresh = rendered();
    assert!(fresh.contains_key("seashell.1") && fresh.contains_key("seashell-exec.1"));
    if std::env::var_os("SEASHELL_WRITE_MAN").is_some() {
        let _ = fs::remove_dir_all(&committed_dir);
        fs::create_dir_all(&committed_dir).unwrap();
        for (name, page) in &fresh {
            fs::write(committed_dir.join(name), page).unwrap();
        }
        return;
    }
    let committed = pages_in(&committed_dir);
    let names = |pages: &BTreeMap<String, Vec<u8>>| pages.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&fresh),
        "docs/man/ has other pages than the command line: run SEASHELL_WRITE_MAN=1 cargo test --test main man::"
    );
    for (name, page) in &fresh {
        assert!(
            committed.get(name) == Some(page),
            "docs/man/{name} is out of step with the command line: run SEASHELL_WRITE_MAN=1 cargo test --test main man::"
        );
    }
}
