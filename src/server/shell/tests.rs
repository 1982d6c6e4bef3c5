//! The shell state with real shells: bash and dash run the argv this module builds, with
//! fd 3 on a temporary file (a `/bin/sh` wrapper opens it, then execs the shell), and the
//! record they write is parsed and fed to the next line.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::*;

const BASH: &str = "/bin/bash";
const DASH: &str = "/bin/dash";

/// One run of a shell: what it printed, its status, and the state it reported.
#[derive(Debug)]
struct Run {
    stdout: Vec<u8>,
    stderr: String,
    status: i32,
    state: Result<State, StateError>,
    record: Vec<u8>,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn state(&self) -> &State {
        match &self.state {
            Ok(state) => state,
            Err(err) => panic!(
                "no state ({err}); status {}; stderr: {}; record: {:?}",
                self.status,
                self.stderr,
                String::from_utf8_lossy(&self.record)
            ),
        }
    }
}

fn shell(program: &str) -> LoginShell {
    LoginShell::choose(Some(Path::new(program)), None)
}

/// The session's base environment in these tests.
fn base_env(home: &Path) -> Vec<(OsString, OsString)> {
    vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("HOME".into(), home.as_os_str().to_owned()),
        ("TERM".into(), "dumb".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("SEASHELL_TEST".into(), "base".into()),
        ("SHELL".into(), "/bin/bash".into()),
    ]
}

/// Starts `program ARGS` as the session would, with fd 3 on a file; `before_wait` gets
/// the child (to signal it) before it is waited for.
fn spawn_with(
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    cwd: &Path,
    home: &Path,
    before_wait: impl FnOnce(&mut std::process::Child),
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let statefile = dir.path().join("state");
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", "exec 3>\"$0\"; exec \"$@\""])
        .arg(&statefile)
        .arg(program)
        .args(args)
        .env_clear()
        .envs(base_env(home))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().unwrap();
    before_wait(&mut child);
    let output = child.wait_with_output().unwrap();
    let bytes = std::fs::read(&statefile).unwrap_or_default();
    Run {
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        status: output.status.code().unwrap_or(-1),
        state: State::parse(&bytes),
        record: bytes,
    }
}

fn spawn(
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    cwd: &Path,
    home: &Path,
) -> Run {
    spawn_with(program, args, env, cwd, home, |_| {})
}

/// Runs one line in `state`.
fn line(sh: &LoginShell, state: &State, home: &Path, text: &str) -> Run {
    let LineArgs { args, env } = sh.line_args(state, text);
    spawn(&sh.program, &args, &env, state.cwd(), home)
}

/// Runs `lines` one after the other from the plain state in `home`, each in the state
/// the previous one left (a line without a state leaves the previous one).
fn run_lines_in(sh: &LoginShell, home: &Path, lines: &[&str]) -> Vec<Run> {
    let mut state = State::plain(home);
    let mut runs = Vec::new();
    for text in lines {
        let run = line(sh, &state, home, text);
        if let Ok(next) = &run.state {
            state = next.clone();
        }
        runs.push(run);
    }
    runs
}

/// [`run_lines_in`] in a fresh temporary home; the last run's stdout, for the common case.
fn run_lines(program: &str, lines: &[&str]) -> Vec<Run> {
    let home = tempfile::tempdir().unwrap();
    run_lines_in(&shell(program), home.path(), lines)
}

/// The last run's stdout, after checking no line printed on stderr.
fn last_out(runs: &[Run]) -> String {
    for run in runs {
        assert_eq!(run.stderr, "", "stderr of a line (stdout {:?})", run.out());
    }
    runs.last().unwrap().out()
}

fn both(test: impl Fn(&str)) {
    for program in [BASH, DASH] {
        test(program);
    }
}

#[test]
fn exported_and_plain_variables_carry() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &[
                "export FOO=bar; BAR=baz",
                r#"echo "$FOO $BAR"; sh -c 'echo "[$FOO][$BAR][$SEASHELL_TEST]"'"#,
            ],
        );
        assert_eq!(last_out(&runs), "bar baz\n[bar][][base]\n", "{sh}");
    });
}

#[test]
fn status_carries() {
    both(|sh| {
        let runs = run_lines(sh, &["false", "echo $?", "(exit 7)", "echo $?", "echo $?"]);
        let statuses: Vec<i32> = runs.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [1, 0, 7, 0, 0], "{sh}");
        let outs: Vec<String> = runs.iter().map(Run::out).collect();
        assert_eq!(outs, ["", "1\n", "", "7\n", "0\n"], "{sh}");
        assert_eq!(runs[0].state().status(), 1);
    });
}

#[test]
fn cd_carries() {
    both(|sh| {
        let runs = run_lines(sh, &["cd /tmp", "pwd"]);
        assert_eq!(last_out(&runs), "/tmp\n", "{sh}");
        assert_eq!(runs[0].state().cwd(), Path::new("/tmp"));
    });
}

#[test]
fn cd_dash_uses_oldpwd() {
    both(|sh| {
        let runs = run_lines(sh, &["cd /tmp", "cd /etc", "cd -", "pwd"]);
        assert_eq!(runs[2].out(), "/tmp\n", "{sh}");
        assert_eq!(last_out(&runs), "/tmp\n", "{sh}");
    });
}

#[test]
fn cd_home_with_space_and_and() {
    both(|sh| {
        let home = tempfile::tempdir().unwrap();
        let home_path = home.path().canonicalize().unwrap();
        std::fs::create_dir(home_path.join("dir with space")).unwrap();
        let runs = run_lines_in(
            &shell(sh),
            &home_path,
            &[
                "cd /tmp",
                "cd ~",
                "pwd",
                r#"cd "$HOME/dir with space""#,
                "pwd",
                "cd /etc && pwd",
                "pwd",
            ],
        );
        let outs: Vec<String> = runs.iter().map(Run::out).collect();
        let home_text = home_path.display().to_string();
        assert_eq!(outs[2], format!("{home_text}\n"), "{sh}");
        assert_eq!(outs[4], format!("{home_text}/dir with space\n"), "{sh}");
        assert_eq!(
            runs[3].state().cwd(),
            home_path.join("dir with space").as_path()
        );
        assert_eq!(outs[5], "/etc\n");
        assert_eq!(last_out(&runs), "/etc\n");
    });
}

#[test]
fn bash_alias_and_function_carry() {
    let runs = run_lines(
        BASH,
        &[
            r#"alias hi='echo hello'; greet() { echo "hi $1"; }"#,
            "hi; greet you",
            "hi",
        ],
    );
    assert_eq!(runs[1].out(), "hello\nhi you\n");
    assert_eq!(last_out(&runs), "hello\n");
}

#[test]
fn dash_alias_carries_functions_do_not() {
    let runs = run_lines(
        DASH,
        &[
            r#"alias hi='echo "it'\''s" $HOME'; f() { echo f; }"#,
            "hi; f",
        ],
    );
    let home = runs[0].state().cwd().display().to_string();
    assert_eq!(runs[1].out(), format!("it's {home}\n"));
    assert!(
        runs[1].stderr.contains("f: not found"),
        "{}",
        runs[1].stderr
    );
}

#[test]
fn bash_shopt_extglob_carries_into_the_parse_of_the_next_line() {
    let runs = run_lines(
        BASH,
        &[
            "shopt -s extglob",
            "case abc in @(x|abc)) echo yes;; *) echo no;; esac",
            "f() { case $1 in +(a)) echo many-a;; esac; }",
            "f aaa",
        ],
    );
    assert_eq!(runs[1].out(), "yes\n");
    assert_eq!(last_out(&runs), "many-a\n");
}

#[test]
fn noglob_carries() {
    both(|sh| {
        let runs = run_lines(sh, &["set -o noglob", "echo /*"]);
        assert_eq!(last_out(&runs), "/*\n", "{sh}");
    });
}

#[test]
fn xtrace_carries_without_tracing_our_code() {
    both(|sh| {
        // bash doubles PS4's first character inside `eval`, as it would for `eval LINE`
        // typed at a prompt.
        let ps4 = if sh == BASH { "++" } else { "+" };
        let runs = run_lines(sh, &["set -x", "echo hi", "false", "echo $?"]);
        assert_eq!(runs[1].out(), "hi\n");
        assert_eq!(runs[1].stderr, format!("{ps4} echo hi\n"), "{sh}");
        assert_eq!(runs[2].stderr, format!("{ps4} false\n"), "{sh}");
        assert_eq!(runs[3].out(), "1\n", "{sh}");
        assert_eq!(runs[3].stderr, format!("{ps4} echo 1\n"), "{sh}");
    });
}

#[test]
fn errexit_carries_and_a_failure_then_ends_the_shell() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &[
                "set -e",
                "false || echo survived",
                "echo $-",
                "false; echo no",
            ],
        );
        assert_eq!(runs[1].out(), "survived\n", "{sh}");
        assert!(runs[2].out().contains('e'), "{sh}: {}", runs[2].out());
        assert_eq!(runs[3].out(), "");
        assert_eq!(runs[3].status, 1);
        assert_eq!(runs[3].state, Err(StateError::Incomplete));
    });
}

#[test]
fn exit_and_exec_leave_no_state() {
    both(|sh| {
        let runs = run_lines(sh, &["exit 3", "exec true"]);
        assert_eq!(runs[0].status, 3, "{sh}");
        assert_eq!(runs[0].state, Err(StateError::Incomplete), "{sh}");
        assert_eq!(runs[1].status, 0);
        assert_eq!(runs[1].state, Err(StateError::Incomplete));
    });
}

#[test]
fn a_program_printing_a_record_cannot_change_the_state() {
    both(|sh| {
        let fake = r"printf 'seashell-state\0bash\0\0000\0\0/\n\0-\0\0FAKE=1\n\0\0\0\0\0end\0'";
        let fake_posix = fake.replace("bash", "posix");
        let runs = run_lines(sh, &[fake, &fake_posix, "echo ${FAKE-none}; pwd"]);
        let home = runs[0].state().cwd().display().to_string();
        assert!(runs[0].stdout.starts_with(b"seashell-state\0"));
        assert_eq!(runs[2].out(), format!("none\n{home}\n"), "{sh}");
    });
}

#[test]
fn fd_3_is_closed_for_the_line() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &[
                r#"sh -c 'echo x >&3'; echo "rc=$?"; echo y >&3; echo "rc=$?""#,
                "echo next",
            ],
        );
        let out = runs[0].out();
        assert!(
            out.starts_with("rc=2\nrc="),
            "{sh}: {out} {}",
            runs[0].stderr
        );
        assert!(!out.contains("rc=0"), "{sh}: {out}");
        assert!(runs[0].stderr.contains("3"), "{sh}: {}", runs[0].stderr);
        assert!(runs[0].state.is_ok(), "{sh}");
        assert_eq!(runs[1].out(), "next\n");
        assert_eq!(runs[1].stderr, "");
    });
}

#[test]
fn sigint_aborts_the_line_and_keeps_the_state() {
    // `ready` comes from the process that becomes `sleep`: once it is seen, that process
    // exists and gets the signal (a signal that reaches a child between fork and exec
    // could be lost, and `sleep` would run on).
    sigint_aborts("sh -c 'echo ready; exec sleep 30'; echo not-reached");
}

#[test]
fn sigint_aborts_a_shell_loop_and_a_function() {
    sigint_aborts("f() { while :; do :; done; }; echo ready; f; echo not-reached");
    sigint_aborts("set -x; sh -c 'echo ready; exec sleep 30' | cat; echo not-reached");
    // In a function with redirections of its own: bash then leaves fd 3 closed on `exit`.
    sigint_aborts(
        "f() { { sh -c 'echo ready; exec sleep 30'; } 2>/dev/null 4>&1; }; f; echo not-reached",
    );
}

fn sigint_aborts(text: &str) {
    both(|sh| {
        let home = tempfile::tempdir().unwrap();
        let sh = shell(sh);
        let before = run_lines_in(&sh, home.path(), &["KEPT=yes; cd /tmp"]);
        let state = before[0].state().clone();
        let LineArgs { args, env } = sh.line_args(&state, text);
        let began = std::time::Instant::now();
        let run = spawn_with(
            &sh.program,
            &args,
            &env,
            state.cwd(),
            home.path(),
            |child| {
                use std::io::Read;
                let stdout = child.stdout.as_mut().unwrap();
                let mut seen = Vec::new();
                let mut byte = [0u8];
                while !seen.ends_with(b"ready\n") {
                    assert_eq!(stdout.read(&mut byte).unwrap(), 1, "no ready");
                    seen.push(byte[0]);
                }
                let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
                nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGINT).unwrap();
            },
        );
        assert!(began.elapsed() < std::time::Duration::from_secs(20));
        assert_eq!(run.status, 130, "{}", run.stderr);
        assert!(!run.out().contains("not-reached"));
        let after = run.state();
        assert_eq!(after.status(), 130);
        assert_eq!(after.cwd(), Path::new("/tmp"));
        let next = line(&sh, after, home.path(), "echo $? $KEPT");
        assert_eq!(next.out(), "130 yes\n");
    });
}

#[test]
fn aliases_named_like_builtins_do_not_break_capture() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &[
                "alias printf='echo HIJACK' exit='echo HIJACK' declare='echo HIJACK' \
                 builtin='echo HIJACK' command='echo HIJACK' set='echo HIJACK' \
                 eval='echo HIJACK' export='echo HIJACK' unset='echo HIJACK' \
                 alias='echo HIJACK' shopt='echo HIJACK' pwd='echo HIJACK' \
                 trap='echo HIJACK' readonly='echo HIJACK'",
                "X=1",
                "echo $X",
            ],
        );
        assert_eq!(last_out(&runs), "1\n", "{sh}");
    });
}

#[test]
fn bash_reserved_word_aliases_do_not_break_our_code() {
    let runs = run_lines(
        BASH,
        &[
            "alias if='echo HIJACK' '{'='echo HIJACK' '[['='echo HIJACK' case='echo HIJACK' \
             for=HIJACK while=HIJACK",
            "X=1",
            r#"\echo "$X""#,
        ],
    );
    assert_eq!(last_out(&runs), "1\n");
}

#[test]
fn readonly_carries_without_errors() {
    both(|sh| {
        let runs = run_lines(sh, &["readonly RO=1", "echo $RO", "RO=2", "echo $RO"]);
        assert_eq!(runs[1].out(), "1\n", "{sh}");
        assert_eq!(runs[1].stderr, "", "{sh}");
        assert!(!runs[2].stderr.is_empty(), "{sh}");
        assert_eq!(runs[3].out(), "1\n", "{sh}");
        assert_eq!(runs[3].stderr, "", "{sh}");
    });
}

#[test]
fn odd_values_carry_byte_exact() {
    let value: &[u8] = b"a\nb'c\"d$e\\f\tg `h` \x01\xff }";
    let runs = run_lines(
        BASH,
        &[
            r#"V=$'a\nb\'c"d$e\\f\tg `h` \x01\xff }'"#,
            r#"printf %s "$V""#,
        ],
    );
    assert_eq!(runs[1].stdout, value);
    assert_eq!(runs[1].stderr, "");
    let runs = run_lines(
        DASH,
        &[
            r#"V=$(printf 'a\nb'"'"'c"d$e\\f\tg `h` \001\377 }.'); V=${V%.}"#,
            r#"printf %s "$V""#,
        ],
    );
    assert_eq!(runs[1].stdout, value);
    assert_eq!(runs[1].stderr, "");
}

#[test]
fn a_huge_state_is_too_long() {
    both(|sh| {
        let runs = run_lines(sh, &["X=$(head -c 2097152 /dev/zero | tr '\\0' a)"]);
        assert_eq!(runs[0].state, Err(StateError::TooLong), "{sh}");
        assert_eq!(
            StateError::TooLong.to_string(),
            "the shell state is larger than 1 MiB (too many variables or functions)"
        );
    });
}

#[test]
fn a_large_state_travels_in_chunks() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &[
                "X=$(head -c 300000 /dev/zero | tr '\\0' a); Y=end",
                r#"echo ${#X} $Y; env | grep -c __seashell || true"#,
            ],
        );
        assert_eq!(last_out(&runs), "300000 end\n0\n", "{sh}");
    });
}

#[test]
fn the_line_sees_no_state_machinery() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &[
                "A=1",
                r#"echo "$0 $#"; set | grep -c '^__seashell_[a-z_]*=' ; env | grep -c seashell_"#,
            ],
        );
        let name = Path::new(sh).file_name().unwrap().to_str().unwrap();
        assert_eq!(runs[1].out(), format!("{name} 0\n0\n0\n"), "{sh}");
    });
}

#[test]
fn unset_and_unexported_base_variables_stay_so() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &[
                "unset LANG",
                r#"echo "${LANG-unset}""#,
                "echo ${LANG-unset}",
            ],
        );
        assert_eq!(last_out(&runs), "unset\n", "{sh}");
    });
    let runs = run_lines(
        BASH,
        &[
            "export -n SEASHELL_TEST",
            r#"echo "$SEASHELL_TEST"; sh -c 'echo "[$SEASHELL_TEST]"'"#,
        ],
    );
    assert_eq!(last_out(&runs), "base\n[]\n");
}

#[test]
fn changed_base_variables_carry_and_unchanged_ones_stay() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &[
                "export LANG=C; PATH=/sbin:$PATH",
                "echo $LANG $PATH $SEASHELL_TEST",
                "echo $LANG $PATH $SEASHELL_TEST",
            ],
        );
        let expected = "C /sbin:/usr/local/bin:/usr/bin:/bin base\n";
        assert_eq!(runs[1].out(), expected, "{sh}");
        assert_eq!(last_out(&runs), expected, "{sh}");
        assert_eq!(
            runs[1].state().path(),
            Some("/sbin:/usr/local/bin:/usr/bin:/bin")
        );
    });
}

#[test]
fn term_is_always_the_sessions() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &["export TERM=xterm COLUMNS=5", "echo $TERM ${COLUMNS-none}"],
        );
        assert_eq!(last_out(&runs), "dumb none\n", "{sh}");
    });
}

#[test]
fn ifs_carries_and_does_not_disturb_our_code() {
    both(|sh| {
        let runs = run_lines(
            sh,
            &["IFS=:", "x=a:b; for i in $x; do echo $i; done", "echo ok"],
        );
        assert_eq!(runs[1].out(), "a\nb\n", "{sh}");
        assert_eq!(last_out(&runs), "ok\n", "{sh}");
    });
}

#[test]
fn bash_arrays_integers_and_exported_functions_carry() {
    let runs = run_lines(
        BASH,
        &[
            r#"declare -A m=([k]=v [two words]=x); a=(1 "2 3"); declare -i n=5; f() { echo fx; }; export -f f"#,
            r#"echo "${m[k]} ${m[two words]} ${a[1]}"; n+=1; echo $n; bash -c f"#,
        ],
    );
    assert_eq!(last_out(&runs), "v x 2 3\n6\nfx\n");
}

#[test]
fn bash_restore_is_safe_with_glob_options() {
    let runs = run_lines(
        BASH,
        &[
            "shopt -s failglob nullglob; a=([0]=x [1]='*'); declare -A m=([a]=1)",
            r#"echo "${a[1]} ${m[a]}""#,
        ],
    );
    assert_eq!(last_out(&runs), "* 1\n");
}

#[test]
fn nounset_carries() {
    both(|sh| {
        let runs = run_lines(sh, &["set -u", "echo ${X-unset}; echo $-"]);
        assert!(runs[1].out().starts_with("unset\n"));
        assert!(runs[1].out().lines().nth(1).unwrap().contains('u'), "{sh}");
        assert_eq!(runs[1].stderr, "");
    });
}

#[test]
fn bash_as_sh_runs_bash_code_in_posix_mode() {
    let dir = tempfile::tempdir().unwrap();
    let sh_link = dir.path().join("sh");
    std::os::unix::fs::symlink(BASH, &sh_link).unwrap();
    let sh = LoginShell::choose(Some(&sh_link), None);
    assert_eq!(sh.flavor, Flavor::Bash);
    let runs = run_lines_in(
        &sh,
        dir.path(),
        &[
            "X=1; f() { echo f$X; }; alias a='echo A'",
            "f; a; shopt -qo posix && echo posix",
        ],
    );
    assert_eq!(last_out(&runs), "f1\nA\nposix\n");
}

#[test]
fn a_state_of_another_flavor_keeps_cwd_and_status_only() {
    let home = tempfile::tempdir().unwrap();
    let runs = run_lines_in(&shell(BASH), home.path(), &["X=1; cd /tmp; false"]);
    let run = line(
        &shell(DASH),
        runs[0].state(),
        home.path(),
        "echo $? ${X-none}; pwd",
    );
    assert_eq!(run.out(), "1 none\n/tmp\n");
    assert_eq!(run.stderr, "");
}

/// The start: a login shell in `home`.
fn start(program: &str, home: &Path) -> Run {
    let sh = shell(program);
    spawn(&sh.program, &sh.start_args(false), &[], home, home)
}

#[test]
fn start_reads_the_profile() {
    both(|sh| {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join(".profile"),
            "export PROFILE_VAR=yes\necho banner\nalias pa='echo profile-alias'\n",
        )
        .unwrap();
        let run = start(sh, home.path());
        assert!(run.out().contains("banner"), "{sh}: {}", run.out());
        let state = run.state().clone();
        assert_eq!(state.status(), 0);
        let next = line(&shell(sh), &state, home.path(), "echo $PROFILE_VAR; pa");
        assert_eq!(next.out(), "yes\nprofile-alias\n", "{sh}: {}", next.stderr);
        assert_eq!(next.stderr, "");
        let again = line(
            &shell(sh),
            next.state(),
            home.path(),
            "echo $PROFILE_VAR; pa",
        );
        assert_eq!(
            again.out(),
            "yes\nprofile-alias\n",
            "{sh}: {}",
            again.stderr
        );
    });
}

#[test]
fn bash_start_reads_bashrc_when_there_is_no_profile() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".bashrc"),
        "alias hello='echo from-bashrc'\n",
    )
    .unwrap();
    std::fs::write(home.path().join(".bash_logout"), "echo LOGOUT\n").unwrap();
    let run = start(BASH, home.path());
    assert!(!run.out().contains("LOGOUT"));
    let next = line(&shell(BASH), run.state(), home.path(), "hello");
    assert_eq!(next.out(), "from-bashrc\n", "{}", next.stderr);
    // With a profile, bash reads no .bashrc on its own, and neither do we.
    std::fs::write(home.path().join(".profile"), "P=1\n").unwrap();
    let run = start(BASH, home.path());
    let next = line(&shell(BASH), run.state(), home.path(), "hello; echo $P");
    assert_eq!(next.out(), "1\n");
    assert!(next.stderr.contains("hello"), "{}", next.stderr);
}

#[test]
fn start_leaves_no_history_and_no_interactive_options() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join(".profile"), "set -o history; set -o vi\n").unwrap();
    let run = start(BASH, home.path());
    let next = line(
        &shell(BASH),
        run.state(),
        home.path(),
        "set -o | grep -E '^(vi|history|monitor|emacs|histexpand)[[:space:]]+on'",
    );
    assert_eq!(next.out(), "");
    assert!(!home.path().join(".bash_history").exists());
}

#[test]
fn start_whose_profile_execs_is_incomplete() {
    both(|sh| {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join(".profile"), "exec true\n").unwrap();
        let run = start(sh, home.path());
        assert_eq!(run.state, Err(StateError::Incomplete), "{sh}");
    });
}

#[test]
fn start_args_are_login_and_interactive_on_a_terminal() {
    let sh = shell(BASH);
    let args = sh.start_args(true);
    assert_eq!(args.first().unwrap(), "-l");
    assert!(args.iter().any(|a| a == "-i"));
    assert!(!sh.start_args(false).iter().any(|a| a == "-i"));
    assert_eq!(
        sh.exec_args("echo hi"),
        [OsString::from("-c"), OsString::from("echo hi")]
    );
}

#[test]
fn choose_the_shell() {
    let choose = |configured: Option<&str>, passwd: Option<&str>| {
        LoginShell::choose(configured.map(Path::new), passwd.map(Path::new))
    };
    let bin_sh = choose(None, None);
    assert_eq!(bin_sh.program, PathBuf::from("/bin/sh"));
    assert_eq!(bin_sh.flavor, Flavor::Posix); // dash here
    assert_eq!(choose(None, Some(BASH)).flavor, Flavor::Bash);
    assert_eq!(choose(None, Some(BASH)).program, PathBuf::from(BASH));
    assert_eq!(choose(Some(DASH), Some(BASH)).program, PathBuf::from(DASH));
    for refused in [
        "/usr/sbin/nologin",
        "/bin/false",
        "/nonexistent/bash",
        "/etc/passwd",
    ] {
        assert_eq!(choose(None, Some(refused)), bin_sh, "{refused}");
    }
    assert_eq!(choose(Some("/usr/bin/fish"), None), bin_sh);
    assert_eq!(choose(Some("/bin/rbash"), None).flavor, Flavor::Bash);
    assert_eq!(choose(Some("/usr/bin/zsh"), None).flavor, Flavor::Posix);
    assert_eq!(choose(Some("/bin/ksh"), None).flavor, Flavor::Posix);
}

#[test]
fn passwd_lines() {
    let passwd = b"root:x:0:0:root:/root:/bin/bash\nbad line\nu:x:1000:1000::/home/u:\n\
                   d:x:2:2::/:/usr/sbin/nologin\n";
    assert_eq!(passwd_shell(passwd, 0), Some(PathBuf::from("/bin/bash")));
    assert_eq!(passwd_shell(passwd, 1000), None);
    assert_eq!(
        passwd_shell(passwd, 2),
        Some(PathBuf::from("/usr/sbin/nologin"))
    );
    assert_eq!(passwd_shell(passwd, 5), None);
    let me = LoginShell::from_passwd(None);
    assert!(me.program.is_absolute());
}

#[test]
fn parse_errors() {
    assert_eq!(State::parse(b""), Err(StateError::Incomplete));
    assert_eq!(State::parse(b"seashell-st"), Err(StateError::Incomplete));
    assert!(matches!(
        State::parse(b"garbage"),
        Err(StateError::Malformed(_))
    ));
    let ok = b"seashell-state\0bash\0\x000\0\0/x\n\0-\0\0\0\0\0\0\0end\0";
    let state = State::parse(ok).unwrap();
    assert_eq!(state.cwd(), Path::new("/x"));
    assert_eq!(state.path(), None);
    let with = |from: &[u8], to: &[u8]| {
        let text = ok.to_vec();
        let at = text.windows(from.len()).position(|w| w == from).unwrap();
        [&text[..at], to, &text[at + from.len()..]].concat()
    };
    for (from, to) in [
        (&b"\x000\0"[..], &b"\x00256\0"[..]),
        (b"\x000\0", b"\0-1\0"),
        (b"\x000\0", b"\0\0"),
        (b"/x\n", b"/x"),
        (b"/x\n", b"x\n"),
        (b"-\0", b"?\0"),
        (b"bash", b"fish"),
        (b"end\0", b"end\0more\0end\0"),
    ] {
        assert!(
            matches!(State::parse(&with(from, to)), Err(StateError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(to)
        );
    }
    let path = State::parse(&with(b"-\0", b"+/bin:/usr/bin\0")).unwrap();
    assert_eq!(path.path(), Some("/bin:/usr/bin"));
    assert!(format!("{path:?}").contains("restore_bytes"));
}

#[test]
fn every_truncation_of_a_real_record_is_incomplete() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for program in [BASH, DASH] {
        let sh = shell(program);
        let LineArgs { args, env } = sh.line_args(&State::plain(home.path()), "X=$'a\nb'");
        let file = dir.path().join("record");
        let status = Command::new("/bin/sh")
            .args(["-c", "exec 3>\"$0\"; exec \"$@\""])
            .arg(&file)
            .arg(&sh.program)
            .args(&args)
            .envs(env)
            .current_dir(home.path())
            .status()
            .unwrap();
        assert!(status.success());
        let record = std::fs::read(&file).unwrap();
        assert!(State::parse(&record).is_ok());
        for cut in 0..record.len() {
            assert_eq!(
                State::parse(&record[..cut]),
                Err(StateError::Incomplete),
                "{cut}"
            );
        }
    }
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = State::parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_records(
        fields in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![Just(b'\''), Just(b'"'), Just(b'$'), Just(b'\\'), Just(b'\n'),
                            Just(b'='), Just(b' '), Just(b'x'), any::<u8>()],
                0..40),
            10),
        flavor in prop_oneof![Just(&b"bash"[..]), Just(&b"posix"[..])],
    ) {
        let mut record = b"seashell-state\0".to_vec();
        record.extend_from_slice(flavor);
        for (i, field) in fields.iter().enumerate() {
            record.push(0);
            match i {
                1 => record.extend_from_slice(b"0"),
                3 => record.extend_from_slice(b"/\n"),
                4 => record.extend_from_slice(b"-"),
                _ => record.extend(field.iter().filter(|&&b| b != 0)),
            }
        }
        record.extend_from_slice(b"\0end\0");
        let _ = State::parse(&record);
    }
}

/// The cost of a line: median of 20 runs of `true` through `line_args` (plain state and
/// a typical state) against `bash -c true`. `cargo test --lib server::shell -- --ignored
/// --nocapture cost`.
#[test]
#[ignore = "a measurement, not a check"]
fn cost() {
    use std::time::Instant;
    let home = tempfile::tempdir().unwrap();
    // Debian's root profile and .bashrc, its examples (LS_COLORS, aliases) turned on.
    let profile = std::fs::read("/usr/share/base-files/dot.profile").unwrap_or_default();
    std::fs::write(home.path().join(".profile"), profile).unwrap();
    let bashrc = std::fs::read_to_string("/usr/share/base-files/dot.bashrc").unwrap_or_default();
    let bashrc: String = bashrc
        .lines()
        .map(|l| {
            let on = ["# export", "# eval", "# alias"]
                .iter()
                .any(|p| l.starts_with(p));
            format!("{}\n", if on { &l[2..] } else { l })
        })
        .collect();
    std::fs::write(home.path().join(".bashrc"), bashrc).unwrap();
    for program in [BASH, DASH] {
        let sh = shell(program);
        let started = spawn(
            &sh.program,
            &sh.start_args(false),
            &[],
            home.path(),
            home.path(),
        );
        assert_eq!(started.stderr, "");
        // About 60 variables in all, like a server's environment.
        let setup = "for i in $(seq 30); do eval \"export V$i=value-of-variable-$i\"; done; \
                     alias ll='ls -l' la='ls -A' l='ls -CF'; cd /tmp";
        let typical = line(&sh, started.state(), home.path(), setup)
            .state()
            .clone();
        let vars = line(
            &sh,
            &typical,
            home.path(),
            "set | grep -c '^[A-Za-z_][A-Za-z0-9_]*='",
        );
        println!("{program}: {} variables", vars.out().trim());
        let median = |mut run: Box<dyn FnMut()>| {
            let mut times: Vec<f64> = (0..20)
                .map(|_| {
                    let began = Instant::now();
                    run();
                    began.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(f64::total_cmp);
            times[10]
        };
        let plain_c = median(Box::new(|| {
            let ok = Command::new(&sh.program)
                .args(["-c", "true"])
                .env_clear()
                .envs(base_env(home.path()))
                .status()
                .unwrap();
            assert!(ok.success());
        }));
        let timed = |state: &State| {
            let LineArgs { args, env } = sh.line_args(state, "true");
            let dev_null = std::fs::File::create("/dev/null").unwrap();
            let state = state.clone();
            let program = sh.program.clone();
            let home = home.path().to_path_buf();
            median(Box::new(move || {
                let ok = Command::new("/bin/sh")
                    .args(["-c", "exec 3>/dev/null; exec \"$0\" \"$@\""])
                    .arg(&program)
                    .args(&args)
                    .env_clear()
                    .envs(base_env(&home))
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .current_dir(state.cwd())
                    .stdout(dev_null.try_clone().unwrap())
                    .status()
                    .unwrap();
                assert!(ok.success());
            }))
        };
        let wrapper = median(Box::new(|| {
            let ok = Command::new("/bin/sh")
                .args(["-c", "exec 3>/dev/null; exec \"$0\" \"$@\""])
                .args([program, "-c", "true"])
                .env_clear()
                .envs(base_env(home.path()))
                .status()
                .unwrap();
            assert!(ok.success());
        }));
        let plain = timed(&State::plain(home.path()));
        let full = timed(&typical);
        println!(
            "{program}: `-c true` {plain_c:.2} ms; through the fd-3 wrapper {wrapper:.2} ms; \
             line_args plain state {plain:.2} ms; typical state ({} bytes of restore) {full:.2} ms",
            typical.restore().len()
        );
    }
}

#[test]
fn rbash_carries_state_within_its_restrictions() {
    let runs = run_lines(
        "/bin/rbash",
        &["X=1; export Y=2", "echo $X $Y; cd /tmp", "echo $?"],
    );
    assert_eq!(runs[0].stderr, "");
    assert_eq!(runs[1].out(), "1 2\n");
    assert!(
        runs[1].stderr.contains("cd: restricted"),
        "{}",
        runs[1].stderr
    );
    assert_eq!(runs[2].out(), "1\n");
    assert_eq!(runs[2].stderr, "");
}
