//! Unit tests of mount_flags: docker 28's messages and bodies, as seen
//! from the docker CLI against a private dockerd.

use super::*;

fn cwd() -> PathBuf {
    PathBuf::from("/home/u/proj")
}

fn bind(s: &str) -> Result<VolumeSpec, String> {
    volume_spec(s, &cwd())
}

#[test]
fn relative_volume_sources_become_absolute_as_docker() {
    use VolumeSpec::*;
    assert_eq!(bind("./data:/d"), Ok(Bind("/home/u/proj/data:/d".into())));
    assert_eq!(bind(".:/d"), Ok(Bind("/home/u/proj:/d".into())));
    assert_eq!(bind("..:/p"), Ok(Bind("/home/u:/p".into())));
    assert_eq!(bind("../up:/u:ro"), Ok(Bind("/home/u/up:/u:ro".into())));
    assert_eq!(
        bind(".hidden:/h"),
        Ok(Bind("/home/u/proj/.hidden:/h".into()))
    );
    assert_eq!(
        bind("./x/../y/:/z:rw,rprivate"),
        Ok(Bind("/home/u/proj/y:/z:rw,rprivate".into()))
    );
    // Absolute paths, `~` and names are sent as written.
    assert_eq!(bind("/tmp:/t:ro"), Ok(Bind("/tmp:/t:ro".into())));
    assert_eq!(bind("~/a:/b"), Ok(Bind("~/a:/b".into())));
    assert_eq!(bind("named:/n:ro"), Ok(Bind("named:/n:ro".into())));
    assert_eq!(bind("a/b:/c"), Ok(Bind("a/b:/c".into())));
    // The daemon judges modes and odd sources, as with docker.
    assert_eq!(bind("/x:/y:foo"), Ok(Bind("/x:/y:foo".into())));
    assert_eq!(bind("/anon:ro"), Ok(Bind("/anon:ro".into())));
}

#[test]
fn a_bare_volume_path_is_anonymous_as_docker() {
    use VolumeSpec::*;
    assert_eq!(bind("/anon"), Ok(Anonymous("/anon".into())));
    assert_eq!(bind("./rel"), Ok(Anonymous("./rel".into())));
    assert_eq!(bind("."), Ok(Anonymous(".".into())));
    // A drive letter stays with what follows (docker's parser).
    assert_eq!(bind("a:/x"), Ok(Anonymous("a:/x".into())));
    assert_eq!(bind("ab:/x"), Ok(Bind("ab:/x".into())));
}

#[test]
fn bad_volume_specs_fail_with_dockers_messages() {
    assert_eq!(bind(""), Err("invalid empty volume spec".into()));
    assert_eq!(
        bind(":/x"),
        Err("invalid spec: :/x: empty section between colons".into())
    );
    assert_eq!(
        bind("/x:"),
        Err("invalid spec: /x:: empty section between colons".into())
    );
    assert_eq!(
        bind("/x:/y:ro:z"),
        Err("invalid spec: /x:/y:ro:z: too many colons".into())
    );
}

fn mount(s: &str) -> Result<Value, String> {
    parse_mount(s, &cwd())
}

#[test]
fn mounts_become_api_mount_objects() {
    assert_eq!(
        mount("type=bind,src=.,dst=/m1").unwrap(),
        json!({"Type": "bind", "Source": "/home/u/proj", "Target": "/m1"})
    );
    assert_eq!(
        mount(
            "type=bind,source=./sub,target=/m2,ro,bind-propagation=RSLAVE,bind-recursive=disabled"
        )
        .unwrap(),
        json!({"Type": "bind", "Source": "/home/u/proj/sub", "Target": "/m2", "ReadOnly": true,
               "BindOptions": {"Propagation": "rslave", "NonRecursive": true}})
    );
    assert_eq!(
        mount("type=volume,src=vv,destination=/m3,volume-nocopy,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=a=b,volume-driver=local,volume-subpath=sp")
            .unwrap(),
        json!({"Type": "volume", "Source": "vv", "Target": "/m3",
               "VolumeOptions": {"NoCopy": true, "Subpath": "sp", "Labels": {"a": "b"},
                 "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}})
    );
    assert_eq!(
        mount("type=tmpfs,dst=/m4,tmpfs-size=1m,tmpfs-mode=1777").unwrap(),
        json!({"Type": "tmpfs", "Target": "/m4", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}})
    );
    // The default type is volume; keys are case-insensitive; readonly
    // takes Go's booleans; consistency is passed along.
    assert_eq!(
        mount("DST=/a,readonly=1,consistency=Cached").unwrap(),
        json!({"Type": "volume", "Target": "/a", "ReadOnly": true, "Consistency": "cached"})
    );
    assert_eq!(
        mount("type=bind,src=/tmp,dst=/a,ro=false").unwrap(),
        json!({"Type": "bind", "Source": "/tmp", "Target": "/a"})
    );
    assert_eq!(
        mount("type=bind,src=/tmp,dst=/a,bind-recursive=writable,ro").unwrap()["BindOptions"],
        json!({"ReadOnlyNonRecursive": true})
    );
    // A quoted field may hold a comma.
    assert_eq!(
        mount("type=bind,\"src=/a,b\",dst=/c").unwrap()["Source"],
        "/a,b"
    );
    // An unknown type is the daemon's to refuse, as with docker.
    assert_eq!(mount("type=foo,dst=/a").unwrap()["Type"], "foo");
}

#[test]
fn bad_mounts_fail_with_dockers_messages() {
    let cases = [
        ("type=bind", "target is required"),
        ("type=,dst=/a", "type is required"),
        ("type=volume,dst=/a,ro=maybe", "invalid value for ro: maybe"),
        ("type=volume,dst=/a,readonly=yes", "invalid value for readonly: yes"),
        ("type=volume,dst=/a,ro=", "invalid value for ro: "),
        ("type=volume,dst=/a,foo=bar", "unexpected key 'foo' in 'foo=bar'"),
        ("type=volume,dst=/a,foo", "invalid field 'foo' must be a key=value pair"),
        ("type=volume,dst=/a,  ro", "invalid field '  ro' must be a key=value pair"),
        (
            "type=bind,src=/tmp,dst=/a,volume-nocopy",
            "cannot mix 'volume-*' options with mount type 'bind'",
        ),
        (
            "type=volume,dst=/a,bind-propagation=rshared",
            "cannot mix 'bind-*' options with mount type 'volume'",
        ),
        (
            "type=volume,dst=/a,tmpfs-size=1m",
            "cannot mix 'tmpfs-*' options with mount type 'volume'",
        ),
        (
            "type=tmpfs,dst=/a,bind-propagation=shared,volume-nocopy",
            "cannot mix 'volume-*' options with mount type 'tmpfs'",
        ),
        ("type=tmpfs,dst=/a,tmpfs-size=xx", "invalid value for tmpfs-size: xx"),
        ("type=tmpfs,dst=/a,tmpfs-mode=99", "invalid value for tmpfs-mode: 99"),
        ("type=tmpfs,dst=/a,tmpfs-mode=-1", "invalid value for tmpfs-mode: -1"),
        ("type=volume,dst=/a,volume-nocopy=maybe", "invalid value for volume-nocopy: maybe"),
        (
            "type=bind,src=/tmp,dst=/a,bind-recursive=foo",
            "invalid value for bind-recursive: foo (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")",
        ),
        (
            "type=bind,src=/tmp,dst=/a,bind-recursive=writable",
            "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction",
        ),
        (
            "type=bind,src=/tmp,dst=/a,bind-recursive=readonly,ro",
            "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction",
        ),
        (
            "\"type=bind,src=/tmp",
            "parse error on line 1, column 20: extraneous or missing \" in quoted-field",
        ),
        ("a\"b", "parse error on line 1, column 2: bare \" in non-quoted-field"),
        (
            "\"a\"b",
            "parse error on line 1, column 3: extraneous or missing \" in quoted-field",
        ),
        ("", "EOF"),
    ];
    for (input, want) in cases {
        assert_eq!(mount(input), Err(want.to_string()), "--mount {input:?}");
    }
    assert_eq!(
        bad_mount("\"a\"b", "x").message,
        "invalid argument \"\\\"a\\\"b\" for \"--mount\" flag: x"
    );
}

#[test]
fn create_body_carries_volumes_as_the_docker_cli() {
    let f = crate::cmd::container_flags::ContainerFlags {
        volume: vec!["/anon".into(), "/h:/c:ro".into()],
        tmpfs: vec!["/t".into()],
        ..Default::default()
    };
    let b = f.create_body("busybox", &[]).unwrap();
    assert_eq!(b["Volumes"], json!({"/anon": {}}));
    assert_eq!(b["HostConfig"]["Binds"], json!(["/h:/c:ro"]));
    assert_eq!(b["HostConfig"]["Tmpfs"], json!({"/t": ""}));
    let b = crate::cmd::container_flags::ContainerFlags::default()
        .create_body("busybox", &[])
        .unwrap();
    assert!(b.get("Volumes").is_none() && b["HostConfig"].get("Binds").is_none());
}

#[test]
fn flags_fill_the_host_config() {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let (volume, mount, tmpfs, from) = (
        v(&["/anon", "/tmp:/t:ro", "named:/n"]),
        v(&["type=tmpfs,dst=/m"]),
        v(&["/tm", "/tm2:size=1m,mode=700", "/a:b:c"]),
        v(&["x:ro"]),
    );
    let mut hc = Map::new();
    let anon = MountFlags {
        volume: &volume,
        mount: &mount,
        tmpfs: &tmpfs,
        volumes_from: &from,
    }
    .apply(&mut hc)
    .unwrap();
    assert_eq!(anon, Some(json!({"/anon": {}})));
    assert_eq!(hc["Binds"], json!(["/tmp:/t:ro", "named:/n"]));
    assert_eq!(hc["Mounts"], json!([{"Type": "tmpfs", "Target": "/m"}]));
    assert_eq!(
        hc["Tmpfs"],
        json!({"/tm": "", "/tm2": "size=1m,mode=700", "/a": "b:c"})
    );
    assert_eq!(hc["VolumesFrom"], json!(["x:ro"]));

    let mut hc = Map::new();
    let none = MountFlags {
        volume: &[],
        mount: &[],
        tmpfs: &[],
        volumes_from: &[],
    }
    .apply(&mut hc)
    .unwrap();
    assert_eq!((none, hc.len()), (None, 0));

    let bad = v(&["type=volume,dst=/a,foo=bar"]);
    let e = MountFlags {
        volume: &[],
        mount: &bad,
        tmpfs: &[],
        volumes_from: &[],
    }
    .apply(&mut Map::new())
    .unwrap_err();
    assert_eq!(
        e.message,
        "invalid argument \"type=volume,dst=/a,foo=bar\" for \"--mount\" flag: unexpected key 'foo' in 'foo=bar'"
    );
    assert_eq!(e.code, 125);
}
