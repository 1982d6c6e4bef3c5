//! bash's side of the shell state: the scripts a console line and the session's start
//! run, and the restore code made from a bash state record.
//!
//! A line's script is one `{ ... }` group, parsed whole before any of it runs, so no alias
//! the state defines can reach our own code (bash lets an alias even replace `if` or `{`).
//! In order, it:
//! 1. takes the line, the previous status, the deferred `set` letters and the number of
//!    restore chunks from its arguments, and the restore code from the environment
//!    (`__seashell_r0`, ...), then unsets those so no program sees them;
//! 2. writes the record's start and the base environment (`export -p`) on fd 3;
//! 3. defines its functions, and makes SIGINT/SIGQUIT set a flag while it restores;
//! 4. evals the restore code (options, variables, aliases, functions; in the plain
//!    state only `shopt -s expand_aliases`, an interactive shell's default);
//! 5. traps SIGINT and SIGQUIT to abort the line as at an interactive prompt: the state
//!    is written and the shell exits 130 (131). The line's commands share the shell's
//!    process group, so Ctrl-C reaches the shell too, and a non-interactive bash without
//!    the trap would die of it; a handler, not an ignore, so the line's programs still
//!    get the default action. The handler runs with fd 3 closed (the line's own
//!    redirection): it sets an EXIT trap and exits, and `exit` (in the trap's string:
//!    from within a function bash would not do it) unwinds the line's redirections, so
//!    the EXIT trap finds fd 3 open again. If the line was running a function, bash
//!    unwinds nothing and fd 3 stays closed: the record then goes to the close-on-exec
//!    copy of fd 3 bash made for the `eval`, on the lowest free descriptor from 10 (found
//!    before the restore by opening and closing one with `exec {var}<`, which bash
//!    allocates the same way, and written into the trap's string);
//! 6. evals `__seashell_arm` (turns the deferred options on and sets `$?`, its own trace
//!    discarded by closing stderr, which rbash allows where it refuses `2>/dev/null`)
//!    and the line, with fd 3 closed: no program the line runs inherits it, no program's
//!    output can fake the state. A *subshell* the line puts in the background still
//!    holds bash's saved copy, so read the record until the shell is reaped (then drain
//!    it), not to end of file;
//! 7. saves `$?` and `$-`, turns xtrace and verbose off (unseen), writes the rest of the
//!    record and exits with the line's status.
//!
//! Variables are listed with one `declare -p` and filtered in Rust, without a fork: bash
//! 5.2 cannot put variable names in a shell variable without one (`compgen -v` needs a
//! command substitution), and `${!a@}` for each of the 53 possible first letters costs
//! ~0.8 ms.

use super::state::{
    DEFERRED_OPTIONS, Record, SHELL_ONLY_OPTIONS, carried, is_identifier, lines, push_block,
    push_command,
};

/// The functions both scripts define. `__seashell_capture` writes the record after the
/// start fields (the caller has put `$?` in `__seashell_st` and `$-` in `__seashell_f`);
/// it unsets the functions first so `declare -f` lists only the user's.
macro_rules! functions {
    () => {
        r#"__seashell_arm() {
builtin set -- "${__seashell_d-}" "${__seashell_st-0}"
builtin unset -v __seashell_d __seashell_st __seashell_line __seashell_pre
if [[ -n $1 ]]; then builtin set "-$1"; fi
builtin return "$2"
}
__seashell_capture() {
{ builtin set +aeuvx +o history; } 2>&-
builtin trap '' INT QUIT
builtin trap - EXIT ERR DEBUG RETURN
builtin unset -f __seashell_arm __seashell_capture __seashell_done __seashell_intr
if [[ -e /dev/fd/3 || -z ${__seashell_fd-} ]]; then __seashell_fd=3; fi
{
builtin printf '%s\0%s\0' "$__seashell_st" "$__seashell_f"
builtin pwd 2>&- || builtin printf '%s\n' "$PWD"
if [[ -v PATH ]]; then builtin printf '\0+%s\0' "$PATH"; else builtin printf '\0-\0'; fi
builtin shopt -p
builtin set +o
builtin printf '\0'
builtin declare -p
builtin printf '\0\0\0'
builtin declare -f
builtin declare -Fx
builtin printf '\0'
builtin alias -p
builtin printf '\0end\0'
} >&"$__seashell_fd"
}
__seashell_done() { __seashell_capture; builtin exit "$__seashell_st"; }
__seashell_intr() {
{ __seashell_st=$1 __seashell_fd=${2-} __seashell_f=$-${__seashell_d-}; builtin set +xv; } 2>&-
builtin trap __seashell_done EXIT
}
"#
    };
}

/// The record's start: header, flavor, base environment.
macro_rules! record_start {
    () => {
        "{ builtin printf 'seashell-state\\0bash\\0'; builtin export -p; builtin printf '\\0'; } >&3\n"
    };
}

/// `bash -c LINE_SCRIPT NAME LINE STATUS DEFERRED CHUNKS`.
pub(super) const LINE: &str = concat!(
    r#"{
__seashell_line=$1 __seashell_st=$2 __seashell_d=$3 __seashell_k=$4 __seashell_r= __seashell_i=0
builtin set --
while (( __seashell_i < __seashell_k )); do
__seashell_c=__seashell_r$__seashell_i
if [[ ! -v $__seashell_c ]]; then builtin printf '%s: seashell: the shell state is missing from the environment\n' "$0" >&2; builtin exit 125; fi
__seashell_r+=${!__seashell_c}
builtin unset -v "$__seashell_c"
(( ++__seashell_i ))
done
"#,
    record_start!(),
    // Before the restore, while no function can stand for `exec` (`builtin exec` would
    // not do: its redirections would be the `builtin` command's, the `{var}` one left open).
    "exec {__seashell_fd}</dev/null\nexec {__seashell_fd}>&-\n",
    functions!(),
    r#"builtin trap '__seashell_int=130' INT
builtin trap '__seashell_int=131' QUIT
if [[ -n $__seashell_r ]]; then builtin eval "$__seashell_r"; else builtin shopt -s expand_aliases; fi
builtin unset -v __seashell_r __seashell_c __seashell_i __seashell_k
builtin trap "\\__seashell_intr 130 $__seashell_fd; \\builtin exit 130" INT
builtin trap "\\__seashell_intr 131 $__seashell_fd; \\builtin exit 131" QUIT
builtin unset -v __seashell_fd
if [[ -n ${__seashell_int-} ]]; then __seashell_intr "$__seashell_int"; builtin exit "$__seashell_int"; fi
if (( __seashell_st )); then __seashell_pre='\__seashell_arm 2>&- && :'; else __seashell_pre='\__seashell_arm 2>&-'; fi
builtin eval "$__seashell_pre"$'\n'"$__seashell_line" 3>&-
{ __seashell_st=$? __seashell_f=$-; builtin set +xv; } 2>&-
__seashell_done
}
"#
);

/// `bash -l [-i] -c START_SCRIPT NAME`, after the profile. The first line, alone, turns
/// alias expansion off so the profile's aliases cannot reach the group that follows. Its
/// record's base section is empty: `export -p` after the profile is not the base
/// environment, so the first line restores every variable (and one the profile unset
/// comes back).
pub(super) const START: &str = concat!(
    "\\builtin shopt -u expand_aliases\n{\n",
    "builtin printf 'seashell-state\\0bash\\0\\0' >&3\n",
    functions!(),
    r#"builtin trap '__seashell_int=130' INT
builtin trap '__seashell_int=131' QUIT
builtin shopt -s expand_aliases
if [[ ! -e ~/.bash_profile && ! -e ~/.bash_login && ! -e ~/.profile && -r ~/.bashrc ]]; then builtin source ~/.bashrc 3>&-; fi
{ __seashell_st=0 __seashell_f=$-; builtin set +xv; } 2>&-
__seashell_capture
}
"#
);

/// shopt options that cannot be set (bash refuses them) or that are restored last.
const SHOPT_NEVER: &[&[u8]] = &[b"login_shell", b"restricted_shell", b"expand_aliases"];

/// The restore code for a bash record: unset the base variables the state no longer has
/// (or has unexported), options (shopt, set -o: not the interactive-only ones, not the
/// deferred ones), variables (`declare`, attributes kept), aliases, functions (with alias
/// expansion still off, so their bodies are not expanded twice), then alias expansion as
/// the state had it.
pub(super) fn restore(record: &Record<'_>) -> Vec<u8> {
    let vars: Vec<(&[u8], bool, &[u8])> = lines(record.vars)
        .filter_map(|line| declared(line).map(|(flags, name)| (name, flags.contains(&b'x'), line)))
        .filter(|(name, _, _)| carried(name))
        .collect();
    // The base environment's own `declare -x` lines: a variable whose line is the same
    // in the state needs no restoring (and `LANG` or `LC_*` would cost a setlocale).
    let base: Vec<&[u8]> = lines(record.base).collect();
    let mut unset: Vec<Vec<u8>> = Vec::new();
    for name in base
        .iter()
        .filter_map(|line| declared(line).map(|(_, name)| name))
    {
        let exported = vars.iter().any(|(n, x, _)| *n == name && *x);
        if carried(name) && !exported && !unset.iter().any(|u| u == name) {
            unset.push(name.to_vec());
        }
    }
    let (mut shopt_on, mut shopt_off, mut set_o) = (Vec::new(), Vec::new(), Vec::new());
    let mut expand_aliases = true;
    for line in lines(record.options) {
        match line
            .splitn(3, |&b| b == b' ')
            .collect::<Vec<_>>()
            .as_slice()
        {
            [b"shopt", mode @ (b"-s" | b"-u"), name] if is_option(name) => {
                if *name == b"expand_aliases" {
                    expand_aliases = *mode == b"-s";
                } else if !SHOPT_NEVER.contains(name) {
                    let list = if *mode == b"-s" {
                        &mut shopt_on
                    } else {
                        &mut shopt_off
                    };
                    list.push(name.to_vec());
                }
            }
            [b"set", mode @ (b"-o" | b"+o"), name]
                if is_option(name)
                    && !SHELL_ONLY_OPTIONS.contains(name)
                    && !DEFERRED_OPTIONS.contains(name) =>
            {
                set_o.push(mode.to_vec());
                set_o.push(name.to_vec());
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(record.vars.len() + record.funcs.len() + 1024);
    out.extend_from_slice(b"builtin shopt -u expand_aliases\n");
    push_command(&mut out, b"builtin unset -v", &unset);
    push_command(&mut out, b"builtin shopt -s", &shopt_on);
    push_command(&mut out, b"builtin shopt -u", &shopt_off);
    push_command(&mut out, b"builtin set", &set_o);
    // Not `builtin declare`: bash reads `a=(...)` as an array only as `declare`'s own
    // argument. No function exists yet to take `declare` over (they are restored last).
    for (_, _, line) in vars.iter().filter(|(_, _, line)| !base.contains(line)) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    push_block(&mut out, record.aliases);
    push_block(&mut out, record.funcs);
    out.extend_from_slice(if expand_aliases {
        b"builtin shopt -s expand_aliases\n"
    } else {
        b"builtin shopt -u expand_aliases\n"
    });
    out
}

/// The flags and name of a `declare -p` line (`declare -x NAME="value"`). bash quotes
/// every value with a newline or other control character as `$'...'`, so each variable
/// is exactly one line.
fn declared(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = line.strip_prefix(b"declare -")?;
    let (flags, rest) = rest.split_at(rest.iter().position(|&b| b == b' ')?);
    let rest = rest.get(1..)?;
    let name = rest.split(|&b| b == b'=').next()?;
    is_identifier(name).then_some((flags, name))
}

/// Whether `name` can be an option name (lower case, digits, `_`, `-`).
fn is_option(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}
