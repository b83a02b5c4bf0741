//! Tests of [`super`]: see the parent module.

use super::*;
use proptest::prelude::*;

/// Lines recorded from dockerd 20.10 pulling and pushing a two-layer
/// image: `progress` is the daemon's own rendering (200 columns).
const RECORDED: &str = r#"{"status":"Pulling from test/bb","id":"v2"}
{"status":"Pulling fs layer","progressDetail":{},"id":"251c601bc462"}
{"status":"Pulling fs layer","progressDetail":{},"id":"999c78eb35b0"}
{"status":"Downloading","progressDetail":{"current":36445,"total":3001128},"progress":"[\u003e                                                  ]  36.45kB/3.001MB","id":"999c78eb35b0"}
{"status":"Downloading","progressDetail":{"current":1064384,"total":1064384},"progress":"[==================================================\u003e]  1.064MB/1.064MB","id":"251c601bc462"}
{"status":"Download complete","progressDetail":{},"id":"251c601bc462"}
{"status":"Extracting","progressDetail":{"current":98304,"total":1064384},"progress":"[====\u003e                                              ]   98.3kB/1.064MB","id":"251c601bc462"}
{"status":"Verifying Checksum","progressDetail":{},"id":"999c78eb35b0"}
{"status":"Download complete","progressDetail":{},"id":"999c78eb35b0"}
{"status":"Extracting","progressDetail":{"current":163840,"total":3001128},"progress":"[==\u003e                                                ]  163.8kB/3.001MB","id":"999c78eb35b0"}
{"status":"Pull complete","progressDetail":{},"id":"251c601bc462"}
{"status":"Pull complete","progressDetail":{},"id":"999c78eb35b0"}
{"status":"Digest: sha256:e3e35777ba427a06778b516f041b0286659bdce81d629b1a78deeec1909973cf"}
{"status":"Status: Downloaded newer image for 127.0.0.1:45123/test/bb:v2"}
{"status":"Pushing","progressDetail":{"current":33280,"total":3000000},"progress":"[\u003e                                                  ]  33.28kB/3MB","id":"29c5136c7c14"}
{"status":"Pushing","progressDetail":{"current":2228736,"total":3000000},"progress":"[=====================================\u003e             ]  2.229MB/3MB","id":"29c5136c7c14"}
{"status":"Pushing","progressDetail":{"current":3001856,"total":3000000},"progress":"[==================================================\u003e]  3.002MB","id":"29c5136c7c14"}
{"status":"v2: digest: sha256:e3e35777ba427a06778b516f041b0286659bdce81d629b1a78deeec1909973cf size: 739"}
{"progressDetail":{},"aux":{"Tag":"v2","Digest":"sha256:e3e35777ba427a06778b516f041b0286659bdce81d629b1a78deeec1909973cf","Size":739}}
"#;

fn render(input: &str, tty: bool, width: u16) -> (String, Result<(), String>) {
    let mut r = Renderer::new(Vec::new(), tty, width).with_clock(|| 1_000);
    let mut parser = MessageParser::new();
    let mut res = Ok(());
    for m in parser.push(input.as_bytes()).unwrap() {
        res = r.show(&m);
        if res.is_err() {
            break;
        }
    }
    (String::from_utf8(r.into_inner()).unwrap(), res)
}

#[test]
fn bars_and_counts_match_the_daemons_own_rendering() {
    let mut checked = 0;
    for line in RECORDED.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(expected) = v["progress"].as_str() else {
            continue;
        };
        let m: JsonMessage = serde_json::from_str(line).unwrap();
        let p = m.progress.unwrap();
        assert_eq!(render_progress(&p, 200, 0), expected, "{line}");
        checked += 1;
    }
    assert_eq!(checked, 7);
}

#[test]
fn plain_output_prints_status_changes_only() {
    let (out, res) = render(RECORDED, false, 0);
    res.unwrap();
    assert_eq!(
        out,
        "v2: Pulling from test/bb\n\
         251c601bc462: Pulling fs layer\n\
         999c78eb35b0: Pulling fs layer\n\
         251c601bc462: Download complete\n\
         999c78eb35b0: Verifying Checksum\n\
         999c78eb35b0: Download complete\n\
         251c601bc462: Pull complete\n\
         999c78eb35b0: Pull complete\n\
         Digest: sha256:e3e35777ba427a06778b516f041b0286659bdce81d629b1a78deeec1909973cf\n\
         Status: Downloaded newer image for 127.0.0.1:45123/test/bb:v2\n\
         v2: digest: sha256:e3e35777ba427a06778b516f041b0286659bdce81d629b1a78deeec1909973cf size: 739\n"
    );
}

#[test]
fn terminal_output_redraws_each_layer_line_in_place() {
    let input = r#"{"status":"Pulling from test/bb","id":"v2"}
{"status":"Pulling fs layer","progressDetail":{},"id":"aaa"}
{"status":"Pulling fs layer","progressDetail":{},"id":"bbb"}
{"status":"Downloading","progressDetail":{"current":500,"total":1000},"id":"aaa"}
{"status":"Pull complete","progressDetail":{},"id":"bbb"}
{"status":"Digest: sha256:00"}
"#;
    let (out, res) = render(input, true, 80);
    res.unwrap();
    let expected = concat!(
        "v2: Pulling from test/bb\n",
        // a new id: a new line, then up 1, draw, down 1
        "\n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B",
        "\n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B",
        // aaa is two lines up; narrow terminal: no bar
        "\x1b[2A\x1b[2K\raaa: Downloading     500B/1kB\r\x1b[2B",
        "\x1b[1A\x1b[2K\rbbb: Pull complete \r\x1b[1B",
        "Digest: sha256:00\n",
    );
    assert_eq!(out, expected);
}

#[test]
fn wide_terminals_get_bars_and_the_time_left() {
    let p = Progress {
        current: 250,
        total: 1000,
        start: 990,
        ..Default::default()
    };
    // 10 s for 250 bytes: 30 s for the remaining 750.
    assert_eq!(
        render_progress(&p, 120, 1_000),
        format!("[============>{}]     250B/1kB 30s", " ".repeat(38))
    );
    assert_eq!(render_progress(&p, 80, 1_000), "    250B/1kB 30s");
    assert_eq!(render_progress(&p, 40, 1_000), "    250B/1kB");
    let units = Progress {
        current: 3,
        total: 7,
        units: "layers".into(),
        hidecounts: false,
        ..Default::default()
    };
    assert_eq!(render_progress(&units, 80, 0), "3/7 layers");
    let no_total = Progress {
        current: 123_456,
        ..Default::default()
    };
    assert_eq!(render_progress(&no_total, 80, 0), " 123.5kB");
    assert_eq!(render_progress(&Progress::default(), 200, 0), "");
}

#[test]
fn sizes_and_durations_print_as_go_does() {
    for (n, s) in [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (36_445, "36.45kB"),
        (98_304, "98.3kB"),
        (1_064_384, "1.064MB"),
        (999_960, "1000kB"),
        (80_000_000_000, "80GB"),
    ] {
        assert_eq!(human_size(n), s, "{n}");
    }
    assert_eq!(go_duration(0), "0s");
    assert_eq!(go_duration(90), "1m30s");
    assert_eq!(go_duration(7205), "2h0m5s");
}

#[test]
fn errors_in_the_stream_stop_the_display_with_their_message() {
    let input = r#"{"status":"The push refers to repository [127.0.0.1:45123/test/bb]"}
{"errorDetail":{"message":"tag does not exist: 127.0.0.1:45123/test/bb:v2"},"error":"tag does not exist: 127.0.0.1:45123/test/bb:v2"}
{"status":"never shown"}
"#;
    let (out, res) = render(input, false, 0);
    assert_eq!(
        out,
        "The push refers to repository [127.0.0.1:45123/test/bb]\n"
    );
    assert_eq!(
        res.unwrap_err(),
        "tag does not exist: 127.0.0.1:45123/test/bb:v2"
    );
    let legacy: JsonMessage = serde_json::from_str(r#"{"error":"boom"}"#).unwrap();
    assert_eq!(legacy.error_message().as_deref(), Some("boom"));
}

#[test]
fn aux_payloads_are_collected_not_printed() {
    let mut r = Renderer::new(Vec::new(), false, 0);
    let mut parser = MessageParser::new();
    for m in parser.push(RECORDED.as_bytes()).unwrap() {
        r.show(&m).unwrap();
    }
    assert_eq!(r.aux.len(), 1);
    assert_eq!(r.aux[0]["Size"], 739);
}

#[test]
fn truncated_or_malformed_streams_are_errors() {
    let mut p = MessageParser::new();
    let got = p.push(b"{\"status\":\"a\"}\r\n{\"status\":\"b").unwrap();
    assert_eq!(got.len(), 1);
    assert!(p.finish().unwrap_err().contains("ended in the middle"));
    let mut p = MessageParser::new();
    let err = p
        .push(b"{\"status\":\"a\"}\n<html>oops</html>")
        .unwrap_err();
    assert!(err.contains("malformed progress message"), "{err}");
    assert!(err.contains("<html>"), "{err}");
    let mut p = MessageParser::new();
    assert!(p.push(b" \r\n").unwrap().is_empty());
    p.finish().unwrap();
    // A message that never ends does not grow without bound.
    let mut p = MessageParser::new();
    p.push(b"{\"status\":\"").unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let err = (0..20).find_map(|_| p.push(&chunk).err()).unwrap();
    assert!(err.contains("over 16 MiB"), "{err}");
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_messages(cuts in proptest::collection::vec(0usize..2000, 0..40)) {
        let bytes = RECORDED.as_bytes();
        let whole = MessageParser::new().push(bytes).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.sort_unstable();
        let mut parser = MessageParser::new();
        let mut got = Vec::new();
        let mut at = 0;
        for c in cuts.into_iter().chain([bytes.len()]) {
            got.extend(parser.push(&bytes[at..c]).unwrap());
            at = c;
        }
        prop_assert!(parser.finish().is_ok());
        prop_assert_eq!(got, whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), split in 0usize..300) {
        let mut parser = MessageParser::new();
        let split = split.min(data.len());
        let _ = parser.push(&data[..split]);
        let _ = parser.push(&data[split..]);
        let _ = parser.finish();
    }
}
