//! The layers point one way (docs/ARCHITECTURE.md): this reads every `src/**/*.rs` file and
//! fails when a module names a module of a layer it must not depend on, whether by
//! `crate::X`, by `super::super::X` or by a `use crate::{X, ...}` group. Comments, doc links
//! and string literals are not dependencies and are skipped. The binary's own modules
//! (`main.rs` and what it declares) sit above every layer and are not checked.

use std::path::{Path, PathBuf};

/// What a rule forbids a module to name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A top-level module of the library (`crate::server`).
    Module(&'static str),
    /// An external crate (`tokio`).
    Crate(&'static str),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Module(name) => write!(f, "crate::{name}"),
            Self::Crate(name) => write!(f, "the {name} crate"),
        }
    }
}

/// Modules under `from` (a module path, `server::session::core`) never name any of `never`.
struct Rule {
    from: &'static str,
    never: &'static [Target],
    why: &'static str,
}

use Target::{Crate, Module};

/// Everything above the protocol.
const ABOVE_PROTO: &[Target] = &[
    Module("agent"),
    Module("cli"),
    Module("server"),
    Module("client"),
    Module("audit"),
    Module("transport"),
    Module("config"),
    Module("quickstart"),
];

/// Everything above the shared I/O layers (transport, framepool, fileio).
const ABOVE_IO: &[Target] = &[
    Module("cli"),
    Module("server"),
    Module("client"),
    Module("audit"),
    Module("config"),
    Module("quickstart"),
];

/// The crates that implement cryptography: only the `crypto` module names them, so the
/// protocol and everything above it work unchanged with either provider.
const CRYPTO_CRATES: &[&str] = &[
    "aws_lc_rs",
    "rsa",
    "x25519_dalek",
    "hkdf",
    "aes_gcm",
    "sha2",
    "rand",
];

const RULES: &[Rule] = &[
    Rule {
        from: "crypto",
        never: &[
            Module("proto"),
            Module("keys"),
            Module("agent"),
            Module("cli"),
            Module("server"),
            Module("client"),
            Module("audit"),
            Module("transport"),
            Module("config"),
            Module("quickstart"),
            Module("fileio"),
            Module("framepool"),
            Module("shown"),
        ],
        why: "crypto is the bottom layer: primitives over bytes, knowing no message, key \
              file or end of the connection",
    },
    Rule {
        from: "proto",
        never: ABOVE_PROTO,
        why: "proto is the pure core: it knows no server, client, audit log, transport, \
              configuration or command line",
    },
    Rule {
        from: "proto",
        never: &[Crate("tokio")],
        why: "proto does no I/O and has no runtime: bytes and time are passed in",
    },
    Rule {
        from: "keys",
        never: ABOVE_PROTO,
        why: "keys is the lowest layer: it takes values and returns values, and knows no \
              command line, server, client or audit log",
    },
    Rule {
        from: "keys",
        never: &[Module("proto")],
        why: "keys is below proto: proto reads and writes key bytes through keys::public",
    },
    Rule {
        from: "client",
        never: &[Module("server")],
        why: "client and server never import each other: what they share lives below them",
    },
    Rule {
        from: "server",
        never: &[Module("client")],
        why: "client and server never import each other: what they share lives below them",
    },
    Rule {
        from: "audit",
        never: &[
            Module("client"),
            Module("server"),
            Module("cli"),
            Module("config"),
        ],
        why: "the audit log only records: the server calls it, never the other way round",
    },
    Rule {
        from: "server::session::core",
        never: &[Crate("tokio"), Module("audit"), Module("transport")],
        why: "the session core is pure: events and a time in, actions out; the async shell \
              around it does the I/O, the audit writes and the waiting",
    },
    Rule {
        from: "server::admission",
        never: &[Crate("tokio"), Module("audit"), Module("transport")],
        why: "admission is pure bookkeeping over tickets and a time passed in; the gate \
              applies it",
    },
    Rule {
        from: "server::penalty",
        never: &[Crate("tokio"), Module("audit"), Module("transport")],
        why: "penalties are pure: failures and a time in, refusals out",
    },
    Rule {
        from: "server::throttle",
        never: &[Crate("tokio"), Module("audit"), Module("transport")],
        why: "the log budget is pure: a time in, a yes or no out",
    },
    Rule {
        from: "shown",
        never: ABOVE_IO,
        why: "shown is one pure function on text, below every layer that prints",
    },
    Rule {
        from: "shown",
        never: &[
            Module("keys"),
            Module("proto"),
            Module("transport"),
            Module("framepool"),
            Module("fileio"),
        ],
        why: "shown is one pure function on text: it needs no other module",
    },
    Rule {
        from: "transport",
        never: ABOVE_IO,
        why: "transport drives proto over any stream for both ends: it knows neither end",
    },
    Rule {
        from: "agent",
        never: ABOVE_IO,
        why: "the agent holds keys for the client commands: it knows neither end, the audit \
              log nor the command line",
    },
    Rule {
        from: "agent::store",
        never: &[Crate("tokio"), Module("transport")],
        why: "the key store is pure: requests and a time in, answers out",
    },
    Rule {
        from: "framepool",
        never: ABOVE_IO,
        why: "framepool is the data path's buffers, shared by both ends",
    },
    Rule {
        from: "fileio",
        never: ABOVE_IO,
        why: "fileio is the file side of transfers, shared by both ends",
    },
];

/// One place a file names a module or crate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    target: Target,
}

/// A lexed token: only what paths are made of is kept apart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

/// Tokens with their 1-based line, comments, strings and character literals dropped.
fn lex(source: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while let Some(c) = at(i) {
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == Some('/') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => {
                let mut depth = 0usize;
                loop {
                    match (at(i), at(i + 1)) {
                        (Some('/'), Some('*')) => {
                            depth += 1;
                            i += 2;
                        }
                        (Some('*'), Some('/')) => {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        }
                        (Some(c), _) => {
                            line += usize::from(c == '\n');
                            i += 1;
                        }
                        (None, _) => break,
                    }
                }
            }
            '"' => i = skip_string(&chars, i + 1, &mut line),
            '\'' => {
                if at(i + 1) == Some('\\') {
                    i += 3; // the quote, the backslash and the escaped character
                    while at(i).is_some_and(|c| c != '\'') {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == Some('\'') {
                    i += 3;
                } else {
                    i += 1; // a lifetime: its name lexes as an identifier
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let hashes = chars[i..].iter().take_while(|&&c| c == '#').count();
                if (word == "r" || word == "br") && at(i + hashes) == Some('"') {
                    i = skip_raw_string(&chars, i + hashes + 1, hashes, &mut line);
                } else if word == "r" && hashes == 1 {
                    i += 1; // a raw identifier: r#name
                } else {
                    tokens.push((Tok::Ident(word), line));
                }
            }
            c if c.is_ascii_digit() => {
                while at(i).is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    i += 1;
                }
                tokens.push((Tok::Other, line));
            }
            ':' if at(i + 1) == Some(':') => {
                tokens.push((Tok::PathSep, line));
                i += 2;
            }
            '{' => {
                tokens.push((Tok::Open, line));
                i += 1;
            }
            '}' => {
                tokens.push((Tok::Close, line));
                i += 1;
            }
            ',' => {
                tokens.push((Tok::Comma, line));
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                tokens.push((Tok::Other, line));
                i += 1;
            }
        }
    }
    tokens
}

/// Skips a string body from `i` (just after the opening quote) to after its closing quote.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                *line += usize::from(chars.get(i + 1) == Some(&'\n'));
                i += 2;
            }
            '"' => return i + 1,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

/// Skips a raw string body (no escapes) from `i` to after its closing quote and `hashes` `#`s.
fn skip_raw_string(chars: &[char], mut i: usize, hashes: usize, line: &mut usize) -> usize {
    while let Some(&c) = chars.get(i) {
        let closing = chars.get(i + 1..i + 1 + hashes);
        if c == '"' && closing.is_some_and(|h| h.iter().all(|&c| c == '#')) {
            return i + 1 + hashes;
        }
        *line += usize::from(c == '\n');
        i += 1;
    }
    i
}

/// Every library module or external crate that `source`, the file of module `module` (its
/// path from the crate root), names.
fn references(source: &str, module: &[String]) -> Vec<Reference> {
    let tokens = lex(source);
    let ident = |i: usize| match tokens.get(i) {
        Some((Tok::Ident(word), _)) => Some(word.as_str()),
        _ => None,
    };
    let is = |i: usize, tok: &Tok| tokens.get(i).is_some_and(|(t, _)| t == tok);
    let mut found = Vec::new();
    // Inline modules (`mod tests { ... }`) open at a brace depth.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some((tok, line)) = tokens.get(i) {
        let line = *line;
        let after_sep = i > 0 && is(i - 1, &Tok::PathSep);
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(word) if word == "mod" => {
                if let Some(name) = ident(i + 1)
                    && is(i + 2, &Tok::Open)
                {
                    inline.push((name.to_owned(), depth));
                }
            }
            Tok::Ident(word) if !after_sep && is(i + 1, &Tok::PathSep) => {
                let here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(name, _)| name.clone()))
                    .collect();
                let (base, next) = match word.as_str() {
                    "crate" => (Vec::new(), i + 2),
                    "super" => {
                        let mut ups = 1;
                        let mut j = i + 2;
                        while ident(j) == Some("super") && is(j + 1, &Tok::PathSep) {
                            ups += 1;
                            j += 2;
                        }
                        let keep = here.len().saturating_sub(ups);
                        (here[..keep].to_vec(), j)
                    }
                    "self" => (here.clone(), i + 2),
                    _ => {
                        if !word.starts_with(char::is_uppercase) {
                            found.push(Reference {
                                line,
                                target: Target::Crate(leak(word)),
                            });
                        }
                        i = path_end(&tokens, i);
                        continue;
                    }
                };
                for (first, at_line) in path_heads(&tokens, next) {
                    let top = base.first().cloned().unwrap_or(first);
                    found.push(Reference {
                        line: at_line,
                        target: Target::Module(leak(&top)),
                    });
                }
                i = path_end(&tokens, i);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Where the path starting at `i` ends: after its last segment, or after the closing brace
/// of a `{...}` group it ends in (whose items are no paths of their own).
fn path_end(tokens: &[(Tok, usize)], mut i: usize) -> usize {
    loop {
        let sep = tokens.get(i + 1).is_some_and(|(t, _)| *t == Tok::PathSep);
        match tokens.get(i + 2) {
            Some((Tok::Ident(_), _)) if sep => i += 2,
            Some((Tok::Open, _)) if sep => {
                let mut depth = 0usize;
                for (j, (tok, _)) in tokens.iter().enumerate().skip(i + 2) {
                    match tok {
                        Tok::Open => depth += 1,
                        Tok::Close if depth == 1 => return j + 1,
                        Tok::Close => depth -= 1,
                        _ => {}
                    }
                }
                return tokens.len();
            }
            _ => return i + 1,
        }
    }
}

/// The first identifier of the path at `i`, or of each item of a `{a::b, c}` group there.
fn path_heads(tokens: &[(Tok, usize)], i: usize) -> Vec<(String, usize)> {
    match tokens.get(i) {
        Some((Tok::Ident(word), line)) => vec![(word.clone(), *line)],
        Some((Tok::Open, _)) => {
            let mut heads = Vec::new();
            let mut depth = 0usize;
            let mut expect_head = true;
            for (tok, line) in tokens.iter().skip(i) {
                match tok {
                    Tok::Open => depth += 1,
                    Tok::Close => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    Tok::Comma if depth == 1 => expect_head = true,
                    Tok::Ident(word) if depth == 1 && expect_head => {
                        heads.push((word.clone(), *line));
                        expect_head = false;
                    }
                    _ => {}
                }
            }
            heads
        }
        _ => Vec::new(),
    }
}

/// Names live as long as the test; rules compare them by value.
fn leak(name: &str) -> &'static str {
    Box::leak(name.to_owned().into_boxed_str())
}

/// The broken rules in `source`, the file of `module`, as `path:line: message`.
fn violations(path: &str, source: &str, module: &[String]) -> Vec<String> {
    if module.is_empty() {
        return Vec::new();
    }
    let joined = module.join("::");
    let under = |from: &str| joined == from || joined.starts_with(&format!("{from}::"));
    let mut out = Vec::new();
    for reference in references(source, module) {
        for rule in RULES.iter().filter(|rule| under(rule.from)) {
            if rule.never.contains(&reference.target) {
                out.push(format!(
                    "{path}:{}: {} must not use {} ({})",
                    reference.line, rule.from, reference.target, rule.why
                ));
            }
        }
        if let Target::Crate(name) = reference.target
            && CRYPTO_CRATES.contains(&name)
            && !under("crypto")
        {
            out.push(format!(
                "{path}:{}: {joined} must not use {} (only crypto names a crypto crate: \
                 the rest of seashell goes through its provider interface)",
                reference.line, reference.target
            ));
        }
    }
    out
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// A file's module path from its crate root: `src/audit/writer/sink.rs` is
/// `audit::writer::sink`, `src/proto/mod.rs` is `proto`, `src/lib.rs` is the root.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if !matches!(stem, "mod" | "lib" | "main") {
            parts.push(stem.to_owned());
        }
    }
    parts
}

/// The modules `main.rs` declares: they belong to the binary, above every layer.
fn binary_modules(src: &Path) -> Vec<String> {
    let main = std::fs::read_to_string(src.join("main.rs")).unwrap();
    let tokens = lex(&main);
    tokens
        .windows(3)
        .filter_map(|w| match w {
            [(Tok::Ident(m), _), (Tok::Ident(name), _), (Tok::Other, _)] if m == "mod" => {
                Some(name.clone())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_module_imports_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let binary = binary_modules(&src);
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let module = module_path(relative);
        let in_binary =
            relative == Path::new("main.rs") || module.first().is_some_and(|m| binary.contains(m));
        if in_binary {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        let shown = Path::new("src").join(relative);
        broken.extend(violations(&shown.to_string_lossy(), &source, &module));
        checked += 1;
    }
    assert!(
        checked > 20,
        "only {checked} files found under {}",
        src.display()
    );
    assert!(
        broken.is_empty(),
        "imports against the layers (docs/ARCHITECTURE.md):\n{}",
        broken.join("\n")
    );
}

/// `unsafe` code lives in one module (SECURITY.md): the crate denies it and only
/// `src/server/child_setup.rs` allows it.
#[test]
fn only_the_child_setup_module_has_unsafe_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in rust_files(&src) {
        let source = std::fs::read_to_string(&file).unwrap();
        let words = lex(&source);
        if words.iter().any(
            |(tok, _)| matches!(tok, Tok::Ident(word) if word == "unsafe" || word == "unsafe_code"),
        ) {
            found.push(file.strip_prefix(&src).unwrap().display().to_string());
        }
    }
    assert_eq!(
        found,
        ["server/child_setup.rs"],
        "unsafe code outside its module"
    );
}

fn module(path: &str) -> Vec<String> {
    module_path(Path::new(path))
}

#[test]
fn the_checker_sees_every_way_of_naming_a_module() {
    let record = module("proto/record.rs");
    let named = |source: &str| -> Vec<Target> {
        references(source, &record)
            .into_iter()
            .map(|r| r.target)
            .collect()
    };
    assert_eq!(named("use crate::server::X;"), [Module("server")]);
    assert_eq!(named("use super::super::server::X;"), [Module("server")]);
    assert_eq!(named("use super::handshake::X;"), [Module("proto")]);
    assert_eq!(named("let x = crate::audit::f();"), [Module("audit")]);
    assert_eq!(
        named("use crate::{\n    audit::Who,\n    keys::{a, b},\n};"),
        [Module("audit"), Module("keys")]
    );
    assert_eq!(named("fn f() { tokio::spawn(g()); }"), [Crate("tokio")]);
    assert_eq!(
        named("#[cfg(test)]\nmod tests {\n    use super::super::cli::Cli;\n}"),
        [Module("proto")],
        "inside an inline module, super::super is still the file's parent"
    );
    assert_eq!(
        named("mod tests {\n    use super::super::super::cli::Cli;\n}\nuse super::X;"),
        [Module("cli"), Module("proto")],
        "and the inline module ends at its closing brace"
    );
}

#[test]
fn comments_strings_and_characters_are_not_imports() {
    let keys = module("keys/keygen.rs");
    let source = r##"
        // use crate::cli::KeygenArgs;
        /* crate::server /* nested */ crate::audit */
        /// [`x`](crate::client::X)
        const A: &str = "crate::cli::Cli";
        const B: &str = r#"crate::server "quoted" "#;
        const C: char = '{';
        const D: [char; 2] = ['\'', '\\'];
        fn f<'a>(x: &'a str) -> &'a str { x }
        use crate::keys::public;
    "##;
    let found = references(source, &keys);
    assert_eq!(
        found,
        [Reference {
            line: 10,
            target: Module("keys")
        }]
    );
}

#[test]
fn a_violation_names_the_file_the_line_and_the_rule() {
    let source = "//! keys\n\nuse crate::cli::{FingerprintArgs, KeygenArgs};\n";
    let found = violations("src/keys/keygen.rs", source, &module("keys/keygen.rs"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("src/keys/keygen.rs:3: keys must not use crate::cli ("),
        "{}",
        found[0]
    );
    let crossed = violations(
        "src/client/dest.rs",
        "use crate::server::DEFAULT_PORT;",
        &module("client/dest.rs"),
    );
    assert_eq!(crossed.len(), 1, "{crossed:?}");
    assert!(crossed[0].contains("client must not use crate::server"));
}

#[test]
fn only_the_crypto_module_names_a_crypto_crate() {
    let source = "use rsa::Oaep;\nfn f() { let _ = aws_lc_rs::rand::fill(&mut []); }\n";
    let found = violations("src/proto/record.rs", source, &module("proto/record.rs"));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("src/proto/record.rs:1: proto::record must not use the rsa crate"),
        "{}",
        found[0]
    );
    assert!(found[1].contains("aws_lc_rs"), "{}", found[1]);
    let inside = violations("src/crypto/aws_lc.rs", source, &module("crypto/aws_lc.rs"));
    assert!(inside.is_empty(), "{inside:?}");
}
