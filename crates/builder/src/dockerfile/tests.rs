//! Parser tests: each Dockerfile construct, errors with their lines, and
//! properties on arbitrary input.

use super::*;

fn p(text: &str) -> Dockerfile {
    match parse(text, "Dockerfile") {
        Ok(d) => d,
        Err(e) => panic!("parse failed: {e}\n{text}"),
    }
}

fn err(text: &str) -> SyntaxError {
    match parse(text, "Dockerfile") {
        Ok(d) => panic!("parse succeeded: {d:?}\n{text}"),
        Err(e) => e,
    }
}

/// The instructions of the only stage.
fn only(text: &str) -> Vec<Instruction> {
    let d = p(text);
    assert_eq!(d.stages.len(), 1, "{d:?}");
    d.stages.into_iter().next().unwrap().instructions
}

fn kinds(text: &str) -> Vec<Kind> {
    only(text).into_iter().map(|i| i.kind).collect()
}

fn one(text: &str) -> Kind {
    let mut k = kinds(text);
    assert_eq!(k.len(), 1, "{k:?}");
    k.remove(0)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn shell(t: &str) -> Command {
    Command::Shell(t.to_string())
}

#[test]
fn from_forms() {
    let d = p("FROM busybox\n");
    assert_eq!(d.escape, '\\');
    assert_eq!(d.stages[0].base, "busybox");
    assert_eq!(d.stages[0].name, None);
    assert_eq!(d.stages[0].platform, None);
    assert_eq!(d.stages[0].line, 1);

    let d = p("# a comment\n\nfrom --platform=$BUILDPLATFORM golang:1.22 AS Build-1\nRUN x\nFROM scratch\nCOPY --from=build-1 /a /b\n");
    assert_eq!(d.stages.len(), 2);
    let s0 = &d.stages[0];
    assert_eq!(s0.base, "golang:1.22");
    assert_eq!(s0.platform.as_deref(), Some("$BUILDPLATFORM"));
    // as docker: stage names are lowercased
    assert_eq!(s0.name.as_deref(), Some("build-1"));
    assert_eq!(s0.line, 3);
    assert_eq!(s0.instructions.len(), 1);
    assert_eq!(d.stages[1].base, "scratch");
    assert_eq!(d.stages[1].line, 5);
    assert_eq!(d.stages[1].instructions[0].line, 6);
    let d = p("FROM a as b\n");
    assert_eq!(d.stages[0].name.as_deref(), Some("b"));
}

#[test]
fn global_args() {
    let d = p("ARG BASE=busybox\nARG A B=\"x y\"\nFROM $BASE\nARG A\nRUN echo $A\n");
    assert_eq!(
        d.args,
        vec![
            ArgDecl {
                name: "BASE".into(),
                default: Some("busybox".into())
            },
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("\"x y\"".into())
            },
        ]
    );
    assert_eq!(d.stages[0].base, "$BASE");
    assert_eq!(
        d.stages[0].instructions[0].kind,
        Kind::Arg(vec![ArgDecl {
            name: "A".into(),
            default: None
        }])
    );
}

#[test]
fn run_cmd_entrypoint_forms() {
    let k = kinds(
        "FROM x\nRUN echo hi  \nRUN [\"/bin/echo\", \"a b\"]\nRUN [ -f /etc/passwd ]\nCMD [\"sh\"]\nCMD echo $HOME\nENTRYPOINT [\"/init\",\"--\"]\nENTRYPOINT exec top -b\nRUN [\"a\"] trailing\n",
    );
    assert_eq!(
        k,
        vec![
            Kind::Run {
                command: shell("echo hi"),
                heredocs: vec![],
                flags: vec![]
            },
            Kind::Run {
                command: Command::Exec(s(&["/bin/echo", "a b"])),
                heredocs: vec![],
                flags: vec![]
            },
            // not JSON: shell form, as docker
            Kind::Run {
                command: shell("[ -f /etc/passwd ]"),
                heredocs: vec![],
                flags: vec![]
            },
            Kind::Cmd(Command::Exec(s(&["sh"]))),
            Kind::Cmd(shell("echo $HOME")),
            Kind::Entrypoint(Command::Exec(s(&["/init", "--"]))),
            Kind::Entrypoint(shell("exec top -b")),
            // as docker (Go's JSON decoder reads the first value only)
            Kind::Run {
                command: Command::Exec(s(&["a"])),
                heredocs: vec![],
                flags: vec![]
            },
        ]
    );
    assert_eq!(one("FROM x\nCMD []\n"), Kind::Cmd(Command::Exec(vec![])));
    let e = err("FROM x\nRUN [\"a\", 1]\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("strings only"), "{e}");
}

#[test]
fn run_flags() {
    let k = one("FROM x\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none make\n");
    assert_eq!(
        k,
        Kind::Run {
            command: shell("make"),
            heredocs: vec![],
            flags: vec![
                ("mount".into(), "type=cache,target=/c".into()),
                ("mount".into(), "type=tmpfs,target=/t".into()),
                ("network".into(), "none".into()),
            ],
        }
    );
    let e = err("FROM x\nRUN --bogus=1 make\n");
    assert_eq!(e.message, "Unknown flag: bogus");
    let e = err("FROM x\nRUN --network make\n");
    assert_eq!(e.message, "Missing a value on flag: network");
    let e = err("FROM x\nRUN --network=a --network=b make\n");
    assert!(e.message.contains("Duplicate flag"), "{e}");
    // `--` ends the flags
    assert_eq!(
        one("FROM x\nRUN -- --not-a-flag\n"),
        Kind::Run {
            command: shell("--not-a-flag"),
            heredocs: vec![],
            flags: vec![]
        }
    );
}

#[test]
fn continuations_and_original() {
    let text = "FROM x\nRUN apt-get update && \\\n    apt-get install -y \\\n# a comment inside\n\n      curl\nRUN a \\  \n  b\nRUN last \\";
    let ins = only(text);
    // as docker: the escape and newline go, the next line's indentation stays
    assert_eq!(
        ins[0].original,
        "RUN apt-get update &&     apt-get install -y       curl"
    );
    assert_eq!(
        ins[0].kind,
        Kind::Run {
            command: shell("apt-get update &&     apt-get install -y       curl"),
            heredocs: vec![],
            flags: vec![]
        }
    );
    assert_eq!(ins[0].line, 2);
    assert_eq!(ins[1].original, "RUN a   b");
    assert_eq!(ins[1].line, 7);
    assert_eq!(ins[2].original, "RUN last");
    // as docker: an escaped escape ends the line
    let ins = only("FROM x\nENV A=x\\\\\nENV B=y\n");
    assert_eq!(ins.len(), 2);
    assert_eq!(ins[0].original, "ENV A=x\\\\");
    let ins = only("  FROM x\n\t  run   echo   a   \n   # indented comment\n");
    assert_eq!(ins[0].original, "run   echo   a");
    assert_eq!(
        ins[0].kind,
        Kind::Run {
            command: shell("echo   a"),
            heredocs: vec![],
            flags: vec![]
        }
    );
}

#[test]
fn empty_continuation_warning() {
    // as docker 20.10: the joined line, its trailing blanks kept
    let (d, w) = parse_with_warnings(
        "FROM x\nENV A=1 \\\n    B=2   \\\n# c\n\n  C=3   \n",
        "Dockerfile",
    )
    .unwrap();
    assert_eq!(
        d.stages[0].instructions[0].original,
        "ENV A=1     B=2     C=3"
    );
    assert_eq!(
        w,
        vec!["Empty continuation line found in:\n    ENV A=1     B=2     C=3   ".to_string()]
    );
    let (_, w) = parse_with_warnings("FROM x\nRUN a \\\n# c\n b\n", "Dockerfile").unwrap();
    assert!(w.is_empty());
}

#[test]
fn crlf_and_bom() {
    let ins = only("\u{feff}FROM x\r\nRUN a \\\r\n b\r\nENV A=1\r\n");
    assert_eq!(ins[0].original, "RUN a  b");
    assert_eq!(ins[1].kind, Kind::Env(vec![("A".into(), "1".into())]));
}

#[test]
fn escape_directive() {
    let d = p("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo done\nCOPY a\\b c:\\dst\\\n");
    assert_eq!(d.escape, '`');
    let ins = &d.stages[0].instructions;
    assert_eq!(ins[0].original, "RUN dir c:\\   && echo done");
    assert_eq!(ins[0].line, 3);
    match &ins[1].kind {
        Kind::Copy(c) => {
            assert_eq!(c.sources, s(&["a\\b"]));
            assert_eq!(c.dest, "c:\\dst\\");
        }
        k => panic!("{k:?}"),
    }
    // directives are case-insensitive, may have blanks, and syntax/check are known
    let d = p("#  Syntax = docker/dockerfile:1\n# ESCAPE = `\n#check=skip=all\nFROM x\n");
    assert_eq!(d.escape, '`');
    // a directive after a comment or blank line is only a comment
    assert_eq!(p("# hello\n# escape=`\nFROM x\n").escape, '\\');
    assert_eq!(p("\n# escape=`\nFROM x\n").escape, '\\');
    assert_eq!(p("FROM x\n# escape=`\n").escape, '\\');
    // an unknown directive ends them
    assert_eq!(p("# foo=bar\n# escape=`\nFROM x\n").escape, '\\');
    let e = err("# escape=x\nFROM x\n");
    assert_eq!(e.line, 1);
    assert!(e.message.contains("invalid escape token 'x'"), "{e}");
    let e = err("# escape=`\n# escape=\\\nFROM x\n");
    assert_eq!(e.line, 2);
    assert_eq!(e.message, "only one escape parser directive can be used");
}

#[test]
fn env_and_label_pairs() {
    let k = kinds(
        "FROM x\nENV A=1 B=\"two words\" C='x y' D=a\\ b\nENV LEGACY value with  spaces\nENV E=\nLABEL \"com.example.k\"=\"v 1\" k2=v2\nLABEL old form\nENV X=1 \\\n    Y=2\n",
    );
    assert_eq!(
        k,
        vec![
            Kind::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into()),
                ("C".into(), "'x y'".into()),
                ("D".into(), "a\\ b".into()),
            ]),
            Kind::Env(vec![("LEGACY".into(), "value with  spaces".into())]),
            Kind::Env(vec![("E".into(), "".into())]),
            Kind::Label(vec![
                ("\"com.example.k\"".into(), "\"v 1\"".into()),
                ("k2".into(), "v2".into())
            ]),
            Kind::Label(vec![("old".into(), "form".into())]),
            Kind::Env(vec![("X".into(), "1".into()), ("Y".into(), "2".into())]),
        ]
    );
    // the raw values expand as docker's
    let Kind::Env(pairs) = &k[0] else { panic!() };
    let none = |_: &str| None;
    let v: Vec<String> = pairs
        .iter()
        .map(|(_, v)| expand::word(v, &none, '\\').unwrap())
        .collect();
    assert_eq!(v, s(&["1", "two words", "x y", "a b"]));

    assert_eq!(
        err("FROM x\nENV\n").message,
        "ENV requires at least one argument"
    );
    assert_eq!(
        err("FROM x\nENV ONLY\n").message,
        "ENV must have two arguments"
    );
    assert!(err("FROM x\nENV A=1 B\n")
        .message
        .contains("can't find = in \"B\""));
    assert_eq!(
        err("FROM x\nLABEL\n").message,
        "LABEL requires at least one argument"
    );
    assert_eq!(
        err("FROM x\nENV =x\n").message,
        "ENV names can not be blank"
    );
}

#[test]
fn arg_forms() {
    let k = one("FROM x\nARG A B=2 C=\"x y\" D=\n");
    assert_eq!(
        k,
        Kind::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into())
            },
            ArgDecl {
                name: "C".into(),
                default: Some("\"x y\"".into())
            },
            ArgDecl {
                name: "D".into(),
                default: Some("".into())
            },
        ])
    );
    assert_eq!(
        err("FROM x\nARG\n").message,
        "ARG requires at least one argument"
    );
    assert_eq!(
        err("FROM x\nARG =1\n").message,
        "ARG names can not be blank"
    );
}

#[test]
fn simple_instructions() {
    let k = kinds(
        "FROM x\nWORKDIR /app dir\nUSER 1000:1000\nSTOPSIGNAL SIGKILL\nMAINTAINER me <me@x>\nEXPOSE 80/tcp  $PORT\t443\nVOLUME /a /b\nVOLUME [\"/c d\"]\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n",
    );
    assert_eq!(
        k,
        vec![
            Kind::Workdir("/app dir".into()),
            Kind::User("1000:1000".into()),
            Kind::StopSignal("SIGKILL".into()),
            Kind::Maintainer("me <me@x>".into()),
            Kind::Expose(s(&["80/tcp", "$PORT", "443"])),
            Kind::Volume(s(&["/a", "/b"])),
            Kind::Volume(s(&["/c d"])),
            Kind::Shell(s(&["/bin/bash", "-o", "pipefail", "-c"])),
        ]
    );
}

#[test]
fn missing_arguments() {
    for (instr, msg) in [
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("USER", "USER requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("MAINTAINER", "MAINTAINER requires exactly one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        ("VOLUME []", "VOLUME requires at least one argument"),
        (
            "VOLUME [\"\"]",
            "VOLUME specified can not be an empty string",
        ),
        ("COPY", "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("COPY a", "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("ADD [\"a\"]", "ADD requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("SHELL", "SHELL requires the arguments to be in JSON form"),
        (
            "SHELL /bin/sh -c",
            "SHELL requires the arguments to be in JSON form",
        ),
        ("SHELL []", "SHELL requires at least one argument"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        (
            "HEALTHCHECK FOO x",
            "Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
        ),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        (
            "ONBUILD ONBUILD RUN x",
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        ("ONBUILD from x", "FROM isn't allowed as an ONBUILD trigger"),
        ("WORKDIR --x=1 /a", "Unknown flag: x"),
        ("CMD --help", "Unknown flag: help"),
        // as docker: arguments are checked before flags
        ("EXPOSE --x", "EXPOSE requires at least one argument"),
    ] {
        let e = err(&format!("FROM x\n\n{instr}\n"));
        assert_eq!(e.line, 3, "{instr}: {e}");
        assert_eq!(e.message, msg, "{instr}");
        assert_eq!(e.file, "Dockerfile");
    }
}

#[test]
fn errors_are_located() {
    let e = err("FROM x\nRUN a\nFOO bar\n");
    assert_eq!(e.line, 3);
    // as docker
    assert_eq!(e.message, "unknown instruction: FOO");
    assert_eq!(
        e.to_string(),
        "Dockerfile:3: dockerfile parse error on line 3: unknown instruction: FOO"
    );
    let e = err("FROM x\nRUN a \\\n  b\nfoo-bar \\\n x\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (4, "unknown instruction: FOO-BAR")
    );

    let e = err("# c\nRUN echo\nFROM x\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("no build stage"), "{e}");
    assert!(e.message.contains("RUN"), "{e}");

    let e = err("FROM\n");
    assert_eq!(
        (e.line, e.message.as_str()),
        (1, "FROM requires either one or three arguments")
    );
    assert_eq!(
        err("FROM a b\n").message,
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        err("FROM a AS b c\n").message,
        "FROM requires either one or three arguments"
    );
    assert!(err("FROM a AS 1st\n")
        .message
        .contains("invalid name for build stage: \"1st\""));
    assert!(err("FROM a AS b\nFROM c AS B\n")
        .message
        .contains("b stage name already used"));
    assert_eq!(
        err("FROM --foo=1\n").message,
        "FROM requires either one or three arguments"
    );
    assert_eq!(err("FROM --foo=1 a\n").message, "Unknown flag: foo");

    // as docker
    assert_eq!(
        err("").message,
        "the Dockerfile (Dockerfile) cannot be empty"
    );
    assert_eq!(
        err("# only\n\n   \n").message,
        "the Dockerfile (Dockerfile) cannot be empty"
    );
    assert!(err("ARG A=1\n").message.contains("no stages"));

    let e = parse("FROM x\nBAD\n", "sub/My.Dockerfile").unwrap_err();
    assert_eq!(e.file, "sub/My.Dockerfile");
    assert!(e.to_string().starts_with("sub/My.Dockerfile:2: "));
}

#[test]
fn copy_and_add() {
    let k = kinds(
        "FROM x\nCOPY a b/ /dst/\nCOPY --from=build --chown=1:2 --chmod=0755 --link [\"s p\", \"/d\"]\nADD --checksum=sha256:abc --keep-git-dir=true https://x/y.tar /\nCOPY --link=false a b\nCOPY --chown=\"a b\" x y\n",
    );
    let c = |sources: &[&str], dest: &str| Copy {
        sources: s(sources),
        dest: dest.into(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        heredocs: vec![],
    };
    assert_eq!(k[0], Kind::Copy(c(&["a", "b/"], "/dst/")));
    assert_eq!(
        k[1],
        Kind::Copy(Copy {
            from: Some("build".into()),
            chown: Some("1:2".into()),
            chmod: Some("0755".into()),
            link: true,
            ..c(&["s p"], "/d")
        })
    );
    assert_eq!(
        k[2],
        Kind::Add {
            copy: c(&["https://x/y.tar"], "/"),
            checksum: Some("sha256:abc".into()),
            keep_git_dir: true
        }
    );
    assert_eq!(k[3], Kind::Copy(c(&["a"], "b")));
    // as docker: quotes in flag values are removed
    assert_eq!(
        k[4],
        Kind::Copy(Copy {
            chown: Some("a b".into()),
            ..c(&["x"], "y")
        })
    );
    assert_eq!(
        err("FROM x\nCOPY --checksum=x a b\n").message,
        "Unknown flag: checksum"
    );
    assert!(err("FROM x\nCOPY --link=maybe a b\n")
        .message
        .contains("expecting boolean value"));
}

#[test]
fn heredocs() {
    let text = "FROM x\nRUN <<EOF\necho one\n  echo two\nEOF\nRUN python3 <<'PY' > /out\nprint(\"$HOME\")\nPY\nRUN <<-EOT cat -n\n\t\tindented\n\tEOT\nCOPY <<A <<\"B\" /dst/\nfile a $X\nA\nfile b\nB\nRUN [\"sh\", \"<<EOF\"]\nRUN echo \"<<NOT\" done\n";
    let ins = only(text);
    assert_eq!(ins.len(), 6, "{ins:?}");
    assert_eq!(ins[0].original, "RUN <<EOF");
    assert_eq!(
        ins[0].kind,
        Kind::Run {
            command: shell("<<EOF"),
            heredocs: vec![Heredoc {
                name: "EOF".into(),
                content: "echo one\n  echo two\n".into(),
                expand: true
            }],
            flags: vec![],
        }
    );
    assert_eq!(ins[1].line, 6);
    assert_eq!(
        ins[1].kind,
        Kind::Run {
            command: shell("python3 <<'PY' > /out"),
            heredocs: vec![Heredoc {
                name: "PY".into(),
                content: "print(\"$HOME\")\n".into(),
                expand: false
            }],
            flags: vec![],
        }
    );
    // <<- strips leading tabs of the body and of the terminator
    assert_eq!(
        ins[2].kind,
        Kind::Run {
            command: shell("<<-EOT cat -n"),
            heredocs: vec![Heredoc {
                name: "EOT".into(),
                content: "indented\n".into(),
                expand: true
            }],
            flags: vec![],
        }
    );
    assert_eq!(ins[3].line, 12);
    match &ins[3].kind {
        Kind::Copy(c) => {
            assert_eq!(c.sources, s(&["A", "B"]));
            assert_eq!(c.dest, "/dst/");
            assert_eq!(
                c.heredocs,
                vec![
                    Heredoc {
                        name: "A".into(),
                        content: "file a $X\n".into(),
                        expand: true
                    },
                    Heredoc {
                        name: "B".into(),
                        content: "file b\n".into(),
                        expand: false
                    },
                ]
            );
        }
        k => panic!("{k:?}"),
    }
    // JSON form and quoted text take no heredoc
    assert_eq!(ins[4].line, 17);
    assert_eq!(ins[5].line, 18);
    assert_eq!(
        ins[5].kind,
        Kind::Run {
            command: shell("echo \"<<NOT\" done"),
            heredocs: vec![],
            flags: vec![]
        }
    );

    let e = err("FROM x\nRUN <<EOF\necho\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("unterminated heredoc"), "{e}");
    assert!(err("FROM x\nCOPY a <<EOF\nx\nEOF\n")
        .message
        .contains("heredoc as a destination"));
    // a body line that looks like an instruction is only content
    let ins = only("FROM x\nRUN cat <<EOF\nFROM y\nBOGUS\nEOF\nCMD x\n");
    assert_eq!(ins.len(), 2);
}

#[test]
fn healthcheck_forms() {
    let k = kinds(
        "FROM x\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --timeout=3s --start-period=1s --start-interval=2s --retries=3 CMD curl -f http://localhost/ || exit 1\nHEALTHCHECK cmd [\"/ok\"]\n",
    );
    let none = Healthcheck {
        test: None,
        interval: None,
        timeout: None,
        start_period: None,
        start_interval: None,
        retries: None,
    };
    assert_eq!(k[0], Kind::Healthcheck(none.clone()));
    assert_eq!(
        k[1],
        Kind::Healthcheck(Healthcheck {
            test: Some(shell("curl -f http://localhost/ || exit 1")),
            interval: Some("5s".into()),
            timeout: Some("3s".into()),
            start_period: Some("1s".into()),
            start_interval: Some("2s".into()),
            retries: Some("3".into()),
        })
    );
    assert_eq!(
        k[2],
        Kind::Healthcheck(Healthcheck {
            test: Some(Command::Exec(s(&["/ok"]))),
            ..none
        })
    );
    assert_eq!(
        err("FROM x\nHEALTHCHECK --bad=1 CMD x\n").message,
        "Unknown flag: bad"
    );
}

#[test]
fn onbuild() {
    let ins = only("FROM x\nONBUILD RUN echo  hi  \nonbuild   COPY --chown=1 . /app\nONBUILD RUN <<EOF\nbody\nEOF\nCMD x\n");
    // as docker: trailing blanks stay in the trigger, not in the step's text
    assert_eq!(ins[0].kind, Kind::Onbuild("RUN echo  hi  ".into()));
    assert_eq!(ins[0].original, "ONBUILD RUN echo  hi");
    assert_eq!(ins[1].kind, Kind::Onbuild("COPY --chown=1 . /app".into()));
    assert_eq!(ins[2].kind, Kind::Onbuild("RUN <<EOF\nbody\nEOF".into()));
    let Kind::Onbuild(t) = &ins[2].kind else {
        panic!()
    };
    let trig = parse_trigger(t, "Dockerfile", 4).unwrap();
    assert_eq!(
        trig.kind,
        Kind::Run {
            command: shell("<<EOF"),
            heredocs: vec![Heredoc {
                name: "EOF".into(),
                content: "body\n".into(),
                expand: true
            }],
            flags: vec![]
        }
    );
    assert_eq!(ins[3].line, 7);
}

#[test]
fn comments_are_whole_lines_only() {
    let k = one("FROM x\nRUN echo a # not a comment\n");
    assert_eq!(
        k,
        Kind::Run {
            command: shell("echo a # not a comment"),
            heredocs: vec![],
            flags: vec![]
        }
    );
}

/// parse-dockerfile agrees on the structure of Dockerfiles both accept.
#[test]
fn agrees_with_parse_dockerfile() {
    let texts = [
        "ARG V=1\nFROM busybox AS a\nRUN echo \\\n  hi\nENV A=1 B=2\nCOPY a b /c/\nFROM a\nCMD [\"x\"]\nEXPOSE 80 443\nVOLUME [\"/v\"]\nHEALTHCHECK NONE\nUSER u\nWORKDIR /w\nLABEL a=b\nSTOPSIGNAL 9\nSHELL [\"sh\",\"-c\"]\nONBUILD RUN x\nENTRYPOINT e\nADD x y\n",
        "# escape=`\nFROM x\nRUN a `\n b\n",
    ];
    for text in texts {
        let theirs = parse_dockerfile::parse(text).expect("parse-dockerfile");
        let ours = p(text);
        assert_eq!(theirs.stages().len(), ours.stages.len());
        assert_eq!(
            theirs.global_args().len(),
            if ours.args.is_empty() { 0 } else { 1 }
        );
        for (t, o) in theirs.stages().zip(&ours.stages) {
            assert_eq!(t.from.image.value, o.base);
            assert_eq!(t.instructions.len(), o.instructions.len());
            for (ti, oi) in t.instructions.iter().zip(&o.instructions) {
                let same = matches!(
                    (ti, &oi.kind),
                    (parse_dockerfile::Instruction::Run(_), Kind::Run { .. })
                        | (parse_dockerfile::Instruction::Cmd(_), Kind::Cmd(_))
                        | (
                            parse_dockerfile::Instruction::Entrypoint(_),
                            Kind::Entrypoint(_)
                        )
                        | (parse_dockerfile::Instruction::Env(_), Kind::Env(_))
                        | (parse_dockerfile::Instruction::Copy(_), Kind::Copy(_))
                        | (parse_dockerfile::Instruction::Add(_), Kind::Add { .. })
                        | (parse_dockerfile::Instruction::Expose(_), Kind::Expose(_))
                        | (parse_dockerfile::Instruction::Volume(_), Kind::Volume(_))
                        | (
                            parse_dockerfile::Instruction::Healthcheck(_),
                            Kind::Healthcheck(_)
                        )
                        | (parse_dockerfile::Instruction::User(_), Kind::User(_))
                        | (parse_dockerfile::Instruction::Workdir(_), Kind::Workdir(_))
                        | (parse_dockerfile::Instruction::Label(_), Kind::Label(_))
                        | (
                            parse_dockerfile::Instruction::Stopsignal(_),
                            Kind::StopSignal(_)
                        )
                        | (parse_dockerfile::Instruction::Shell(_), Kind::Shell(_))
                        | (parse_dockerfile::Instruction::Onbuild(_), Kind::Onbuild(_))
                );
                assert!(same, "{ti:?} vs {oi:?}");
            }
        }
    }
}

mod props {
    use super::super::*;
    use proptest::prelude::*;

    fn lookup(n: &str) -> Option<String> {
        (n == "A").then(|| "v".to_string())
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,400}") {
            let _ = parse(&text, "Dockerfile");
        }

        #[test]
        fn parse_never_panics_on_dockerfile_like_text(
            lines in prop::collection::vec(
                prop_oneof![
                    Just("FROM x".to_string()),
                    Just("RUN <<EOF".to_string()),
                    Just("EOF".to_string()),
                    Just("\\".to_string()),
                    Just("# escape=`".to_string()),
                    Just("COPY <<-A <<B /d".to_string()),
                    "(RUN|ENV|ARG|COPY|ADD|CMD|LABEL|HEALTHCHECK|ONBUILD|FROM|SHELL|VOLUME) [-a-zA-Z0-9 =\"'\\[\\]$<{}:\\\\`,]{0,30}",
                ],
                0..12,
            )
        ) {
            let _ = parse(&lines.join("\n"), "Dockerfile");
        }

        #[test]
        fn expansion_never_panics(raw in ".{0,200}", esc in prop_oneof![Just('\\'), Just('`')]) {
            let _ = expand::word(&raw, &lookup, esc);
            let _ = expand::words(&raw, &lookup, esc);
        }

        #[test]
        fn expansion_never_panics_on_substitutions(raw in "[${}:+?\\-A-B'\"\\\\ a]{0,60}") {
            let _ = expand::word(&raw, &lookup, '\\');
            let _ = expand::words(&raw, &lookup, '\\');
        }

        #[test]
        fn plain_text_expands_to_itself(raw in "[^$'\"\\\\]{0,200}") {
            prop_assert_eq!(expand::word(&raw, &lookup, '\\'), Ok(raw.clone()));
            let want: Vec<String> = raw.split(char::is_whitespace).filter(|w| !w.is_empty()).map(str::to_string).collect();
            prop_assert_eq!(expand::words(&raw, &lookup, '\\'), Ok(want));
        }

        #[test]
        fn shell_form_text_is_kept(t in "[a-z0-9 ;|&>$'\"=./-]{1,60}") {
            prop_assume!(!t.trim().is_empty() && !t.trim_start().starts_with("--"));
            let d = parse(&format!("FROM x\nRUN {t}\n"), "Dockerfile").unwrap();
            let ins = &d.stages[0].instructions[0];
            let want = format!("RUN {t}");
            prop_assert_eq!(ins.original.as_str(), want.trim());
            prop_assert_eq!(
                &ins.kind,
                &Kind::Run { command: Command::Shell(t.trim().to_string()), heredocs: vec![], flags: vec![] }
            );
        }

        #[test]
        fn continued_lines_join(parts in prop::collection::vec("[a-z0-9]{1,8}", 1..6)) {
            let text = format!("FROM x\nRUN {}\n", parts.join(" \\\n  "));
            let d = parse(&text, "Dockerfile").unwrap();
            prop_assert_eq!(d.stages[0].instructions.len(), 1);
            prop_assert_eq!(&d.stages[0].instructions[0].original, &format!("RUN {}", parts.join("   ")));
        }

        #[test]
        fn literal_ignore_patterns(dir in "[a-z]{1,6}(/[a-z]{1,6}){0,2}", rest in "(/[a-z]{1,6}){0,2}", other in "[A-Z]{1,6}") {
            let ig = ignore::Ignore::parse(&format!("{dir}\n"));
            // the path and everything below it, not its siblings
            let below = format!("{dir}{rest}");
            prop_assert!(ig.excluded(&dir));
            prop_assert!(ig.excluded(&below));
            prop_assert!(!ig.excluded(&other));
            // a later exception for the same path wins
            let ig = ignore::Ignore::parse(&format!("{dir}\n!{dir}\n"));
            prop_assert!(!ig.excluded(&below));
        }

        #[test]
        fn ignore_never_panics(pats in ".{0,100}", path in "[a-z/.*?\\[\\]!]{0,30}") {
            let ig = ignore::Ignore::parse(&pats);
            let _ = ig.excluded(&path);
        }
    }
}

/// Why pier reads lines itself: parse-dockerfile 0.1.9 finds a heredoc
/// only right after RUN, so a body after `RUN python3 <<EOF` is read as
/// instructions; docker (BuildKit) and pier take it as the heredoc.
#[test]
fn parse_dockerfile_misses_heredocs_after_a_command() {
    let text = "FROM x\nRUN python3 <<EOF\nprint(1)\nEOF\n";
    assert!(parse_dockerfile::parse(text).is_err());
    let ins = only(text);
    assert_eq!(ins.len(), 1);
    match &ins[0].kind {
        Kind::Run { heredocs, .. } => assert_eq!(heredocs[0].content, "print(1)\n"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn onbuild_triggers() {
    let i = parse_trigger("RUN echo  hi  ", "Dockerfile", 7).unwrap();
    assert_eq!(i.line, 7);
    assert_eq!(i.original, "RUN echo  hi");
    assert_eq!(
        i.kind,
        Kind::Run {
            command: shell("echo  hi"),
            heredocs: vec![],
            flags: vec![]
        }
    );
    let i = parse_trigger("COPY --chown=1 . /app", "Dockerfile", 1).unwrap();
    assert!(matches!(i.kind, Kind::Copy(_)));
    for bad in [
        "FROM evil",
        "from evil",
        "ONBUILD RUN x",
        "MAINTAINER me",
        "RUN a\nRUN b",
        "RUN a\nFROM b\nRUN c",
        "",
        "BOGUS x",
        "WORKDIR",
    ] {
        let e = parse_trigger(bad, "Dockerfile", 3).unwrap_err();
        assert_eq!(e.line, 3, "{bad:?}: {e}");
    }
}

/// Heredocs are read in the order they are named, each up to its own
/// delimiter (as BuildKit: a later delimiter inside an earlier body is
/// content).
#[test]
fn heredocs_read_in_order() {
    let k = one("FROM x\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n");
    let Kind::Copy(c) = k else { panic!("{k:?}") };
    assert_eq!(c.sources, s(&["X", "Y"]));
    assert_eq!(
        c.heredocs,
        vec![
            Heredoc {
                name: "X".into(),
                content: "Y\n".into(),
                expand: true
            },
            Heredoc {
                name: "Y".into(),
                content: "X\n".into(),
                expand: true
            },
        ]
    );
}
