//! The compiler on whole files: what each section yields, and every problem at once.
use super::*;
use crate::routing::ServerSettings;
use crate::routing::action::{Action, Args, Recipients};
use crate::routing::template::Scope;
use serde_json::{Value, json};

fn env_var(name: &str) -> Option<String> {
    match name {
        "CHAT_TOKENS" => Some("a, b,,c".to_owned()),
        "REDIS_URL" => Some("redis://:secret@10.0.0.1:6380/0".to_owned()),
        "HOOK_SECRET" => Some("a-hook-secret-of-16-bytes".to_owned()),
        "ADMIN_HASH" => Some(ADMIN_HASH.to_owned()),
        _ => None,
    }
}

/// bcrypt("admin-password", cost 4).
const ADMIN_HASH: &str = "$2a$04$wADPsjHI0gxZG1U3j6rVe.Zwdj6C9VLb/Bu7tEB.Xm1Hi8X35te0m";

fn compile_str(src: &str) -> Result<RouteTable, Report> {
    let env = Env {
        base_dir: Path::new(env!("CARGO_MANIFEST_DIR")),
        var: &env_var,
    };
    compile(src, "routes.toml", &env)
}

fn errors(src: &str) -> Vec<String> {
    let report = compile_str(src).unwrap_err();
    report
        .diagnostics
        .iter()
        .map(|d| format!("{} {}", report.location(d), d.message))
        .collect()
}

struct Args0(Vec<Value>);
impl Scope for Args0 {
    fn args(&self) -> Option<&[Value]> {
        Some(&self.0)
    }
    fn socket_id(&self) -> &str {
        "S1"
    }
    fn socket_data(&self) -> Option<&Value> {
        None
    }
    fn auth(&self) -> Option<&Value> {
        None
    }
    fn query(&self, _: &str) -> Option<&str> {
        None
    }
}

#[test]
fn the_parser_is_default_or_msgpack() {
    assert!(!compile_str("").unwrap().server.msgpack);
    assert!(
        compile_str("[server]\nparser = \"msgpack\"\n")
            .unwrap()
            .server
            .msgpack
    );
    assert!(
        !compile_str("[server]\nparser = \"default\"\n")
            .unwrap()
            .server
            .msgpack
    );
    assert_eq!(
        errors("[server]\nparser = \"json\"\n"),
        vec!["routes.toml:2:10 unknown parser `json`; expected \"default\" or \"msgpack\""]
    );
}

#[test]
fn the_admin_ui_has_a_login_and_a_namespace_of_its_own() {
    let t = compile_str("[admin_ui]\nusername = \"admin\"\npassword_hash_env = \"ADMIN_HASH\"\n")
        .unwrap();
    let ui = t.admin_ui.unwrap();
    assert_eq!(
        (ui.namespace.as_str(), ui.mount.as_deref(), ui.readonly),
        ("/admin", Some("/admin-ui"), false)
    );
    assert_eq!(ui.password_hash, ADMIN_HASH);
    assert!(
        t.namespaces.contains_key("/admin"),
        "its namespace is served"
    );
    let t = compile_str(
        "[admin_ui]\nusername = \"a\"\npassword_hash_env = \"ADMIN_HASH\"\nnamespace = \"/ops\"\nmount = false\nreadonly = true\n",
    )
    .unwrap()
    .admin_ui
    .unwrap();
    assert_eq!(
        (t.namespace.as_str(), t.mount, t.readonly),
        ("/ops", None, true)
    );
    assert_eq!(
        errors("[admin_ui]\npassword_hash_env = \"CHAT_TOKENS\"\nnamespace = \"ops\"\n"),
        vec![
            "routes.toml:1:1 [admin_ui] needs `username` (the UI logs in with basic auth)",
            "routes.toml:2:21 `CHAT_TOKENS` is not a bcrypt hash (like $2b$10$…, from `htpasswd -nbBC 10 USER PASSWORD` or bcryptjs)",
            "routes.toml:3:13 `ops` is not a path; expected one like \"/admin\"",
        ]
    );
    assert_eq!(
        errors("[admin_ui]\nusername = \"a\"\npassword_hash_env = \"NOPE\"\n"),
        vec!["routes.toml:3:21 environment variable `NOPE` is not set"]
    );
    assert_eq!(
        errors(
            "[namespaces.\"/admin\".events]\nx = \"io\"\n[admin_ui]\nusername = \"a\"\npassword_hash_env = \"ADMIN_HASH\"\n"
        ),
        vec![
            "routes.toml:3:1 namespace `/admin` is the admin UI's; set [admin_ui] namespace to another"
        ]
    );
}

#[test]
fn cluster_defaults_url_env_and_errors() {
    assert_eq!(compile_str("").unwrap().cluster, None);
    let c = compile_str("[cluster]\nadapter = \"redis\"\n")
        .unwrap()
        .cluster
        .unwrap();
    assert_eq!(
        (c.url.as_str(), c.key.as_str(), c.request_timeout),
        (
            "redis://127.0.0.1:6379",
            "socket.io",
            std::time::Duration::from_secs(5)
        )
    );
    let c = compile_str(
        "[cluster]\nadapter = \"redis\"\nurl_env = \"REDIS_URL\"\nkey = \"app\"\nrequest_timeout = \"2s\"\n",
    )
    .unwrap()
    .cluster
    .unwrap();
    assert_eq!(
        (c.url.as_str(), c.key.as_str(), c.request_timeout),
        (
            "redis://:secret@10.0.0.1:6380/0",
            "app",
            std::time::Duration::from_secs(2)
        )
    );
    assert_eq!(
        errors(
            "[cluster]\nadapter = \"kafka\"\nurl = \"http://x\"\nkey = \"a*\"\nurl_env = \"NOPE\"\nretries = 3\n"
        ),
        vec![
            "routes.toml:2:11 unknown adapter `kafka`; expected \"redis\" or \"redis-streams\"",
            "routes.toml:3:7 the Redis URL must start with `redis://`, `rediss://` or `unix://`",
            "routes.toml:4:7 `a*` is not a channel prefix; expected text without `*?[]`, like \"socket.io\"",
            "routes.toml:6:1 unknown key `retries` in [cluster]; expected one of: adapter, url, url_env, key, request_timeout, stream, max_len, heartbeat",
        ]
    );
    let heartbeat = |text: &str| {
        compile_str(&format!("[cluster]\nadapter = \"redis\"\n{text}"))
            .map(|t| t.cluster.unwrap().heartbeat)
    };
    assert_eq!(heartbeat("").unwrap(), std::time::Duration::from_secs(5));
    assert_eq!(
        heartbeat("heartbeat = \"250ms\"\n").unwrap(),
        std::time::Duration::from_millis(250)
    );
    for bad in ["\"10ms\"", "\"2m\""] {
        assert_eq!(
            errors(&format!(
                "[cluster]\nadapter = \"redis\"\nheartbeat = {bad}\n"
            )),
            vec!["routes.toml:3:13 `heartbeat` must be between \"100ms\" and \"1m\""]
        );
    }
    assert_eq!(
        errors("[cluster]\nurl_env = \"NOPE\"\n"),
        vec![
            "routes.toml:1:1 [cluster] needs `adapter`; expected \"redis\" or \"redis-streams\"",
            "routes.toml:2:11 environment variable `NOPE` is not set",
        ]
    );
}

#[test]
fn cluster_redis_streams_has_a_stream_with_defaults() {
    use super::super::table::StreamSettings;
    let streams = |text: &str| compile_str(text).unwrap().cluster.unwrap().streams;
    assert_eq!(streams("[cluster]\nadapter = \"redis\"\n"), None);
    assert_eq!(
        streams("[cluster]\nadapter = \"redis-streams\"\n"),
        Some(StreamSettings {
            name: "socket.io".to_owned(),
            max_len: 10_000
        })
    );
    assert_eq!(
        streams("[cluster]\nadapter = \"redis-streams\"\nstream = \"app\"\nmax_len = 500\n"),
        Some(StreamSettings {
            name: "app".to_owned(),
            max_len: 500
        })
    );
    assert_eq!(
        errors("[cluster]\nadapter = \"redis\"\nstream = \"app\"\nmax_len = 0\n"),
        vec![
            "routes.toml:3:10 `stream` needs `adapter = \"redis-streams\"`",
            "routes.toml:4:11 `max_len` needs `adapter = \"redis-streams\"`",
            "routes.toml:4:11 `max_len` must be between 1 and 100000000",
        ]
    );
    assert_eq!(
        errors("[cluster]\nadapter = \"redis-streams\"\nstream = \"\"\n"),
        vec!["routes.toml:3:10 `stream` names no stream; expected a key like \"socket.io\""]
    );
}

#[test]
fn defaults_when_the_file_is_empty() {
    let t = compile_str("").unwrap();
    assert_eq!(t.server, ServerSettings::default());
    assert!(t.namespaces.is_empty());
}

#[test]
fn server_settings_are_read_with_units() {
    let t = compile_str(
        r#"[server]
listen = "127.0.0.1:4000"
path = "/rt/"
serve_client = false
transports = ["websocket"]
ping_interval = "100ms"
ping_timeout = "2s"
max_payload = "64KB"
connect_timeout = "1m"
cors = { origins = ["http://x.test"], credentials = true }
"#,
    )
    .unwrap();
    let s = t.server;
    assert_eq!(s.listen, "127.0.0.1:4000");
    assert_eq!(s.path, "/rt");
    assert!(!s.serve_client && !s.polling && s.websocket);
    assert_eq!(s.ping_interval, std::time::Duration::from_millis(100));
    assert_eq!(s.max_payload, 64_000);
    assert_eq!(s.connect_timeout, std::time::Duration::from_secs(60));
    assert_eq!(s.cors.unwrap().origins, vec!["http://x.test"]);
    assert_eq!(
        compile_str("[server]\nmax_payload = 2048\n")
            .unwrap()
            .server
            .max_payload,
        2048
    );
}

#[test]
fn every_problem_is_reported_at_once_with_its_place() {
    let errs = errors(
        r#"[server]
pingInterval = "1s"
ping_timeout = 5
transports = ["carrier-pigeon"]

[namespaces.nochat.events]
x = "io"

[namespaces."/".events]
a = "everyone"
b = { to = "room" }
c = { to = "emit", colour = "red" }
d = { join = "{nope}" }
e = "room"
f = {}
"#,
    );
    assert_eq!(
        errs,
        vec![
            "routes.toml:2:1 unknown key `pingInterval` in [server]; did you mean `ping_interval`? expected one of: listen, path, serve_client, transports, ping_interval, ping_timeout, max_payload, connect_timeout, cors, admin_listen, cookie, recovery, tls, parser",
            "routes.toml:3:16 `ping_timeout` is an integer, expected a string",
            "routes.toml:4:15 unknown transport `carrier-pigeon`; expected \"polling\" or \"websocket\"",
            "routes.toml:6:13 namespace `nochat` must start with `/`, like \"/chat\"",
            "routes.toml:10:5 route of `a`: unknown target `everyone`; expected \"emit\", \"broadcast\", \"room\" or \"io\"",
            "routes.toml:11:12 route of `b`: `to = \"room\"` needs `room`, the room name or a template like \"{0.room}\"",
            "routes.toml:12:20 unknown key `colour` in the route of `c`; expected one of: to, room, include_sender, volatile, event, data, join, leave, ack, script, function, http, timeout, when, namespace, history, replay, schema",
            "routes.toml:13:14 unknown template `{nope}`; expected {N}, {N.field}, {args}, {event}, {socket.id}, {socket.recovered}, {socket.data.KEY}, {handshake.auth.KEY}, {handshake.query.KEY}, {jwt.CLAIM}, {room.size} or {room.members}",
            "routes.toml:14:5 route of `e`: a `room` target needs a room: write { to = \"room\", room = \"NAME\" }",
            "routes.toml:15:5 route of `f` does nothing; expected at least one of to, join, leave, ack",
        ]
    );
}

#[test]
fn a_namespace_with_a_bad_name_still_has_its_routes_checked_and_near_misses_are_named() {
    assert_eq!(
        errors("[namespaces.poll.events]\nvote = { to = \"rooom\", too = \"x\" }\n"),
        vec![
            "routes.toml:1:13 namespace `poll` must start with `/`, like \"/chat\"",
            "routes.toml:2:15 route of `vote`: unknown target `rooom`; did you mean `room`? expected \"emit\", \"broadcast\", \"room\" or \"io\"",
            "routes.toml:2:24 unknown key `too` in the route of `vote`; did you mean `to`? expected one of: to, room, include_sender, volatile, event, data, join, leave, ack, script, function, http, timeout, when, namespace, history, replay, schema",
        ]
    );
    // Nothing close: no guess.
    assert!(errors("[server]\nzzz = 1\n")[0].contains("`zzz` in [server]; expected one of"));
}

#[test]
fn bad_toml_is_located() {
    let errs = errors("[server\nlisten = 1\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("routes.toml:1:"), "{errs:?}");
    assert!(errs[0].contains("invalid TOML"), "{errs:?}");
}

#[test]
fn lifecycle_routes_cannot_read_arguments_or_ack() {
    let errs = errors(
        "[namespaces.\"/\".events]\nconnect = { to = \"broadcast\", data = \"{0}\" }\ndisconnect = { ack = \"x\" }\n",
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("reads event arguments, which a `connect` route never has"));
    assert!(errs[1].contains("a `disconnect` route has no ack to answer"));
}

#[test]
fn script_routes_need_their_file_and_nothing_else() {
    // Cargo.toml exists beside the test's base dir; x.rhai does not.
    let t = compile_str(
        "[namespaces.\"/\".events]\np = { script = \"Cargo.toml\", function = \"go\" }\n",
    )
    .unwrap();
    let step = &t.namespace("/").unwrap().events["p"].steps[0];
    let script = step.script.as_ref().unwrap();
    assert!(script.path.ends_with("Cargo.toml"));
    assert_eq!(script.function, "go");
    let errs = errors(
        "[namespaces.\"/\".events]\nq = { script = \"x.rhai\" }\nr = { script = \"Cargo.toml\", to = \"io\" }\ns = { function = \"f\", to = \"io\" }\n",
    );
    assert!(
        errs[0].contains("script file `x.rhai` not found"),
        "{errs:?}"
    );
    assert!(errs[1].contains("`to` cannot go with `script`"), "{errs:?}");
    assert!(
        errs[2].contains("`function` names a function of `script`"),
        "{errs:?}"
    );
}

#[test]
fn auth_tokens_from_the_file_and_the_environment() {
    let t = compile_str(
        "[namespaces.\"/\".auth]\ntoken = [\"123\"]\ntoken_env = \"CHAT_TOKENS\"\nmessage = \"go away\"\n",
    )
    .unwrap();
    let auth = t.namespace("/").unwrap().auth.clone().unwrap();
    assert_eq!(auth.tokens, vec!["123", "a", "b", "c"]);
    assert_eq!(auth.message, "go away");
    let errs = errors("[namespaces.\"/\".auth]\ntoken_env = \"UNSET_VAR\"\n");
    assert!(
        errs[0].contains("environment variable `UNSET_VAR` is not set"),
        "{errs:?}"
    );
}

#[test]
fn routes_resolve_to_actions() {
    let t = compile_str(
        r#"[namespaces."/".events]
"chat message" = "io"
typing = "broadcast"
"room message" = { to = "room", room = "{0.room}" }
shout = { to = "room", room = "{0}", include_sender = true }
ping = { to = "emit", event = "pong" }
join = { join = "{0}" }
echo = { ack = "{args}" }
hello = [ { to = "emit", event = "welcome", data = "hi {socket.id}" }, { to = "broadcast" } ]
"*" = { to = "emit", event = "unknown", data = ["no route", "{args}"] }
"#,
    )
    .unwrap();
    let ns = t.namespace("/").unwrap();
    let run = |event: &str, args: Value| {
        let Value::Array(args) = args else {
            unreachable!()
        };
        ns.route(event)
            .unwrap()
            .resolve(&event.into(), &Args0(args))
            .actions
            .to_vec()
    };
    let deliver = |to, event: &str, args| Action::Deliver {
        to,
        event: event.into(),
        args,
        volatile: false,
    };
    assert_eq!(
        run("chat message", json!(["x"])),
        vec![deliver(
            Recipients::Namespace {
                include_sender: true
            },
            "chat message",
            Args::Forward
        )]
    );
    assert_eq!(
        run("typing", json!([])),
        vec![deliver(
            Recipients::Namespace {
                include_sender: false
            },
            "typing",
            Args::Forward
        )]
    );
    assert_eq!(
        run("room message", json!([{"room": "r1"}])),
        vec![deliver(
            Recipients::Room {
                room: "r1".into(),
                include_sender: false
            },
            "room message",
            Args::Forward
        )]
    );
    assert_eq!(run("room message", json!(["no room field"])), vec![]);
    assert_eq!(
        run("shout", json!(["r2"])),
        vec![deliver(
            Recipients::Room {
                room: "r2".into(),
                include_sender: true
            },
            "shout",
            Args::Forward
        )]
    );
    assert_eq!(
        run("ping", json!([])),
        vec![deliver(Recipients::Sender, "pong", Args::Forward)]
    );
    assert_eq!(
        run("join", json!(["lobby"])),
        vec![Action::Join("lobby".into())]
    );
    assert_eq!(
        run("echo", json!([1, "a"])),
        vec![Action::Ack(Args::Forward)]
    );
    assert_eq!(
        run("hello", json!([])),
        vec![
            deliver(
                Recipients::Sender,
                "welcome",
                Args::Values(vec![json!("hi S1")])
            ),
            deliver(
                Recipients::Namespace {
                    include_sender: false
                },
                "hello",
                Args::Forward
            ),
        ]
    );
    assert_eq!(
        run("anything", json!([7])),
        vec![deliver(
            Recipients::Sender,
            "unknown",
            Args::Values(vec![json!("no route"), json!([7])])
        )]
    );
}

#[test]
fn limits_have_safe_defaults_and_read_every_form() {
    use crate::routing::LimitSettings;
    use std::time::Duration;
    assert_eq!(compile_str("").unwrap().limits, LimitSettings::default());
    let l = compile_str(
        r#"[limits]
max_connections = 5000
max_connections_per_ip = "off"
trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
handshakes_per_ip = "5/m"
events_per_socket = { rate = "50/s", burst = 80 }
events_excess_disconnect = "3s"
namespaces_per_session = 4
rooms_per_socket = 10
room_name_bytes = 64
pending_acks = 8
queue_bytes = "2MiB"
volatile_bytes = 65536
write_timeout = "2s"
header_timeout = "500ms"
body_timeout = "1s"
upgrade_timeout = "3s"
handshake_headers_bytes = "1KB"
script_operations = 1_000
script_output_bytes = "10KB"
script_timeout = "20ms"
"#,
    )
    .unwrap()
    .limits;
    assert_eq!(l.max_connections, Some(5000));
    assert_eq!(l.max_connections_per_ip, None);
    assert_eq!(l.trusted_proxies.len(), 2);
    assert!(l.trusted_proxies[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
    let h = l.handshakes_per_ip.unwrap();
    assert_eq!((h.burst, (h.per_second * 60.0).round()), (5, 5.0));
    let e = l.events_per_socket.unwrap();
    assert_eq!((e.per_second, e.burst), (50.0, 80));
    assert_eq!(l.events_excess_disconnect, Duration::from_secs(3));
    assert_eq!(
        (
            l.namespaces_per_session,
            l.rooms_per_socket,
            l.room_name_bytes,
            l.pending_acks
        ),
        (4, 10, 64, 8)
    );
    assert_eq!((l.queue_bytes, l.volatile_bytes), (2 * 1024 * 1024, 65536));
    assert_eq!(
        (
            l.write_timeout,
            l.header_timeout,
            l.body_timeout,
            l.upgrade_timeout
        ),
        (
            Duration::from_secs(2),
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(3)
        )
    );
    assert_eq!(
        (
            l.handshake_headers_bytes,
            l.script_operations,
            l.script_output_bytes
        ),
        (1000, 1000, 10_000)
    );
    assert_eq!(l.script_timeout, Duration::from_millis(20));
    let off = compile_str("[limits]\nevents_per_socket = \"off\"\nhandshakes_per_ip = \"off\"\n")
        .unwrap()
        .limits;
    assert_eq!((off.events_per_socket, off.handshakes_per_ip), (None, None));
}

#[test]
fn dangerous_values_are_check_errors_with_their_place() {
    let errs = errors(
        r#"[server]
ping_interval = "18446744073709551615s"
ping_timeout = "600h"
connect_timeout = "0s"
max_payload = "2GiB"
cors = { origins = ["*"], credentials = true }

[limits]
queue_bytes = "1KB"
volatile_bytes = "2KB"
rooms_per_socket = 0
events_per_socket = "lots"
write_timeout = "99999999999999999999m"
trusted_proxies = ["10.0.0.0/33"]
max_connections_per_ip = -1
speed = 1

[namespaces."/".auth]
token = ["123", ""]
"#,
    );
    assert_eq!(
        errs,
        vec![
            "routes.toml:2:17 `ping_interval` must be at most \"24h\"",
            "routes.toml:3:16 `ping_timeout` must be at most \"24h\"",
            "routes.toml:4:19 `connect_timeout` must be longer than zero",
            "routes.toml:5:15 `max_payload` must be at most 1GiB (1073741824 bytes)",
            "routes.toml:6:8 `origins = [\"*\"]` with `credentials = true` would let any site make credentialed requests; list the origins",
            "routes.toml:9:15 `queue_bytes` (1000) is smaller than `max_payload` (1000000): one message could disconnect its recipient",
            "routes.toml:10:18 `volatile_bytes` (2000) must not exceed `queue_bytes` (1000): volatile messages are dropped before the queue is full",
            "routes.toml:11:20 `rooms_per_socket` must be between 1 and 1000000",
            "routes.toml:12:21 `lots` is not a rate; expected a rate like \"50/s\", \"off\", or { rate = \"50/s\", burst = 100 }",
            "routes.toml:13:17 `99999999999999999999m` is not a duration; expected a duration like \"25s\" or \"500ms\"",
            "routes.toml:14:20 `10.0.0.0/33` is not an address or network; expected e.g. \"10.0.0.0/8\" or \"127.0.0.1\"",
            "routes.toml:15:26 `max_connections_per_ip` must be between 1 and 1000000000",
            "routes.toml:16:1 unknown key `speed` in [limits]; expected one of: max_connections, max_connections_per_ip, trusted_proxies, handshakes_per_ip, events_per_socket, events_excess_disconnect, namespaces_per_session, rooms_per_socket, room_name_bytes, pending_acks, queue_bytes, volatile_bytes, write_timeout, header_timeout, body_timeout, upgrade_timeout, handshake_headers_bytes, script_operations, script_output_bytes, script_timeout",
            "routes.toml:19:17 an empty token would let in any client that sends an empty token",
        ]
    );
}

#[test]
fn a_static_mount_of_the_file_system_root_is_refused() {
    let errs = errors("[[static]]\nmount = \"/\"\ndir = \"/\"\n");
    assert_eq!(
        errs,
        vec!["routes.toml:3:7 `/` is the root of the file system: every file would be served"]
    );
}

#[test]
fn webhooks_defaults_events_and_errors() {
    use crate::routing::webhooks::HookEvent;
    use std::time::Duration;
    let table = compile_str(
        r#"
[[webhooks]]
url = "http://backend:8080/hooks"
events = ["connect", "room_vacated", "chat message", "event:join", "*"]
secret_env = "HOOK_SECRET"
batch = { max = 10, interval = "250ms" }
queue = "1MB"
timeout = "2s"

[[webhooks]]
url = "https://audit.example/in"
events = ["disconnect"]
"#,
    )
    .unwrap();
    let [full, plain] = &table.webhooks[..] else {
        panic!("two webhooks: {:?}", table.webhooks);
    };
    assert_eq!(
        full.events,
        vec![
            HookEvent::Connect,
            HookEvent::RoomVacated,
            HookEvent::Event("chat message".to_owned()),
            HookEvent::Event("join".to_owned()),
            HookEvent::Event("*".to_owned()),
        ]
    );
    assert!(full.wants_event("anything") && full.wants(&HookEvent::Connect));
    assert!(
        !full.wants(&HookEvent::Join),
        "`event:join` is the client event"
    );
    assert_eq!(
        full.secret.as_deref(),
        Some(&b"a-hook-secret-of-16-bytes"[..])
    );
    assert_eq!(
        (full.batch_max, full.batch_interval),
        (10, Duration::from_millis(250))
    );
    assert_eq!(
        (full.queue_bytes, full.timeout),
        (1_000_000, Duration::from_secs(2))
    );
    assert_eq!(
        (
            plain.batch_max,
            plain.batch_interval,
            plain.queue_bytes,
            plain.timeout
        ),
        (
            100,
            Duration::from_secs(1),
            8_000_000,
            Duration::from_secs(5)
        )
    );
    assert!(!plain.wants_event("chat message"));

    let errs = errors(
        r#"
[[webhooks]]
events = ["connect"]

[[webhooks]]
url = "ftp://x/"
events = ["connect"]

[[webhooks]]
url = "http://a/"
events = []

[[webhooks]]
url = "http://b/"
events = ["connect"]
batch = { max = 0, interval = "2m" }
secret_env = "NOPE"
colour = 1

[[webhooks]]
url = "http://a/"
events = ["leave"]
"#,
    );
    let all = errs.join("\n");
    for expected in [
        "needs `url`",
        "`ftp://x/` is not an http:// or https:// URL",
        "`events` must name at least one event",
        "`max` must be a whole number from 1 to 10000",
        "environment variable `NOPE` is not set",
        "colour",
        "a [[webhooks]] table for `http://a/` comes earlier",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }
}

#[test]
fn server_recovery_defaults_and_errors() {
    use crate::routing::RecoverySettings;
    use std::time::Duration;
    assert_eq!(compile_str("").unwrap().server.recovery, None);
    let on = compile_str("[server.recovery]\n").unwrap();
    assert_eq!(on.server.recovery, Some(RecoverySettings::default()));
    let set = compile_str(
        "[server.recovery]\nmax_disconnection = \"30s\"\nskip_auth = true\nbuffer = \"1MB\"\n",
    )
    .unwrap();
    assert_eq!(
        set.server.recovery,
        Some(RecoverySettings {
            max_disconnection: Duration::from_secs(30),
            skip_auth: true,
            buffer: 1_000_000,
        })
    );
    let all =
        errors("[server.recovery]\nmax_disconnection = \"0s\"\nskip_auth = \"yes\"\nwindow = 1\n")
            .join("\n");
    for expected in [
        "`max_disconnection` must be longer than zero",
        "unknown key `window` in [server.recovery]",
        "skip_auth",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }
}

#[test]
fn when_namespace_and_event_are_checked() {
    let table = compile_str(
        r#"
[namespaces."/".events]
a = { to = "io", namespace = "/poll", when = { in_room = "{0}", equals = ["{0}", 1], exists = "{jwt.sub}" } }
b = { http = "http://backend/b", when = { exists = "{socket.data.user}" } }
"*" = { to = "emit", data = "{event}" }
[namespaces."/poll".events]
"#,
    )
    .unwrap();
    let ns = table.namespace("/").unwrap();
    let a = &ns.events["a"].steps[0];
    assert!(
        a.when
            .as_ref()
            .is_some_and(|w| w.in_room.is_some() && w.equals.is_some() && w.exists.is_some())
    );
    assert_eq!(
        a.deliver.as_ref().unwrap().namespace.as_deref(),
        Some("/poll")
    );
    assert!(ns.events["b"].steps[0].when.is_some());

    let all = errors(
        r#"
[namespaces."/".events]
a = { to = "io", namespace = "/nope" }
b = { to = "emit", namespace = "/poll" }
c = { to = "io", when = { colour = "red" } }
d = { to = "io", when = {} }
e = { to = "io", when = { equals = ["{0}"] } }
connect = { to = "io", when = { in_room = "{0}" } }
f = { to = "io", data = "{evnt}" }
[namespaces."/poll".events]
"#,
    )
    .join("\n");
    for expected in [
        "`namespace` `/nope` is not declared in [namespaces]",
        "`namespace` applies with `to = \"io\"` or `to = \"room\"`",
        "unknown key `colour` in `when`",
        "`when` needs at least one of in_room, equals, exists",
        "`equals` is a pair of values",
        "`{0}` reads event arguments, which a `connect` route never has",
        "unknown template `{evnt}`",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }
}

#[test]
fn history_and_replay_are_checked() {
    let table = compile_str(
        r#"
[namespaces."/".events]
say = { to = "room", room = "{0}", history = {} }
enter = { join = "{0}", replay = true }
"#,
    )
    .unwrap();
    let ns = table.namespace("/").unwrap();
    let history = ns.events["say"].steps[0]
        .deliver
        .as_ref()
        .unwrap()
        .history
        .unwrap();
    assert_eq!(
        (history.size, history.ttl),
        (50, std::time::Duration::from_secs(3600))
    );
    assert!(ns.events["enter"].steps[0].replay);
    let all = errors(
        r#"
[namespaces."/".events]
a = { to = "io", history = { size = 5 } }
b = { to = "room", room = "r", history = { size = 0, ttl = "2d" } }
c = { to = "io", replay = true }
d = { to = "room", room = "r", history = { depth = 1 } }
"#,
    )
    .join("\n");
    for expected in [
        "`history` applies with `to = \"room\"`",
        "`size` must be a whole number from 1 to 1000",
        "`replay` applies with `join`",
        "unknown key `depth` in `history`",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }
}

#[test]
fn presence_defaults_and_errors() {
    use crate::routing::PresenceSettings;
    let table = compile_str(
        "[namespaces.\"/\"]\npresence = {}\n[namespaces.\"/b\"]\npresence = { event = \"here\", data = [\"name\"] }\n",
    )
    .unwrap();
    assert_eq!(
        table.namespace("/").unwrap().presence,
        Some(PresenceSettings {
            event: "presence".to_owned(),
            data: vec![]
        })
    );
    assert_eq!(
        table.namespace("/b").unwrap().presence,
        Some(PresenceSettings {
            event: "here".to_owned(),
            data: vec!["name".to_owned()]
        })
    );
    let all = errors("[namespaces.\"/\"]\npresence = { event = \"\", colour = 1 }\n").join("\n");
    for expected in [
        "unknown key `colour` in `presence`",
        "`event` names the event",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }
}

#[test]
fn room_templates_need_a_step_that_names_a_room() {
    assert!(
        compile_str("[namespaces.\"/\".events]\na = { join = \"{0}\", ack = \"{room.size}\" }\n")
            .is_ok()
    );
    let all = errors("[namespaces.\"/\".events]\nb = { to = \"io\", data = \"{room.members}\" }\n")
        .join("\n");
    assert!(
        all.contains("`{room.size}` and `{room.members}` need a step that names a room"),
        "{all}"
    );
}

#[test]
fn server_tls_needs_readable_pem_files() {
    assert_eq!(compile_str("").unwrap().server.tls, None);
    assert_eq!(
        errors("[server]\ntls = { cert = \"Cargo.toml\", key = \"Cargo.toml\" }\n"),
        vec!["routes.toml:2:7 `cert` holds no certificate (expected PEM `CERTIFICATE` blocks)"]
    );
    assert_eq!(
        errors("[server]\ntls = { cert = \"no-such.pem\", chain = 1 }\n"),
        vec![
            "routes.toml:2:7 `tls` needs `key`, a PEM file like \"key.pem\"",
            "routes.toml:2:16 cannot read `no-such.pem`: No such file or directory (os error 2) (paths are relative to the routes file)",
            "routes.toml:2:31 unknown key `chain` in tls; expected one of: cert, key",
        ]
    );
}

/// The warnings of `src`, located (those about a namespace without auth aside).
fn warnings(src: &str) -> Vec<String> {
    all_warnings(src)
        .into_iter()
        .filter(|w| !w.contains("has no `auth`"))
        .collect()
}

fn all_warnings(src: &str) -> Vec<String> {
    compile_str(src)
        .unwrap()
        .warnings
        .map(|w| {
            w.diagnostics
                .iter()
                .map(|d| format!("{} {}", w.location(d), d.message))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_namespace_that_relays_without_auth_is_a_warning() {
    assert_eq!(
        all_warnings("[namespaces.\"/\".events]\nsay = \"broadcast\"\n"),
        vec![
            "routes.toml:1:13 / delivers to other clients and has no `auth`: anyone who connects can message everyone there (fine for a public chat; add [namespaces.\"/\".auth] otherwise)"
        ]
    );
    // Answering the sender only, or with auth: nothing to say.
    assert!(all_warnings("[namespaces.\"/\".events]\nping = { to = \"emit\" }\n").is_empty());
    assert!(
        all_warnings("[namespaces.\"/\".auth]\ntoken_env = \"CHAT_TOKENS\"\n[namespaces.\"/\".events]\nsay = \"io\"\n").is_empty()
    );
}

#[test]
fn a_bad_element_of_a_data_list_is_pointed_at() {
    assert_eq!(
        errors("[namespaces.\"/\".events]\nx = { to = \"io\", data = [\"ok\", \"{nope}\", 3] }\n"),
        vec![
            "routes.toml:2:32 unknown template `{nope}`; expected {N}, {N.field}, {args}, {event}, {socket.id}, {socket.recovered}, {socket.data.KEY}, {handshake.auth.KEY}, {handshake.query.KEY}, {jwt.CLAIM}, {room.size} or {room.members}"
        ]
    );
}

#[test]
fn an_event_name_spelt_close_to_a_declared_one_is_named() {
    assert_eq!(
        warnings(
            "[namespaces.\"/\".events]\n\"chat message\" = \"io\"\nrelay = { to = \"io\", event = \"chat mesage\" }\npong = { to = \"emit\", event = \"pong\" }\n"
        ),
        vec![
            "routes.toml:1:13 /: the route of `relay` delivers `chat mesage`; did you mean `chat message` (an event of this namespace)?"
        ]
    );
    assert_eq!(
        errors(
            "[namespaces.\"/poll\".events]\nx = \"io\"\n[namespaces.\"/\".events]\nopen = { to = \"io\", namespace = \"/pol\" }\n"
        ),
        vec![
            "routes.toml:4:33 `namespace` `/pol` is not declared in [namespaces]; did you mean `/poll`?"
        ]
    );
}

#[test]
fn a_template_reading_what_the_schema_forbids_is_a_warning() {
    assert_eq!(
        warnings(
            "[namespaces.\"/\".events]\njoin = [ { join = \"{0.room}\", schema = \"examples/typed/schemas/join.json\" }, { ack = \"{1} {0.nope} {0.room}\" } ]\n"
        ),
        vec![
            "routes.toml:1:13 /: the route of `join` reads `{0.nope}`, which its schema `examples/typed/schemas/join.json` gives `0` no field `nope`: that template never resolves",
            "routes.toml:1:13 /: the route of `join` reads `{1}`, which its schema `examples/typed/schemas/join.json` allows 1 argument(s): that template never resolves",
        ]
    );
}

#[test]
fn a_room_sent_to_that_nothing_joins_is_a_warning_at_its_namespace() {
    assert_eq!(
        warnings(
            "[namespaces.\"/\".events]\nenter = { join = \"lobby\" }\nsay = { to = \"room\", room = \"lobbby\" }\nhi = { to = \"room\", room = \"lobby\" }\n"
        ),
        vec![
            "routes.toml:1:13 room `lobbby` of / is sent to, but nothing joins it: no one will receive those messages"
        ]
    );
    assert_eq!(
        warnings(
            "[namespaces.\"/\".events]\nenter = { join = \"lobby\" }\nsay = { to = \"room\", room = \"hall\" }\nopen = { join = \"hall\" }\n"
        ),
        vec![
            "routes.toml:1:13 room `lobby` of / is joined, but nothing sends to it: joining it changes nothing"
        ]
    );
    // Sent to by a template, a script or the API: any room may be; no guess.
    assert!(warnings("[namespaces.\"/\".events]\nenter = { join = \"lobby\" }\nsay = { to = \"room\", room = \"{0}\" }\n").is_empty());
    // A room joined by a template, a script or the server API may be any room: no guess.
    assert!(warnings("[namespaces.\"/\".events]\nenter = { join = \"{0}\" }\nsay = { to = \"room\", room = \"x\" }\n").is_empty());
    assert!(warnings("[api]\nkeys_env = \"HOOK_SECRET\"\n[namespaces.\"/\".events]\nsay = { to = \"room\", room = \"x\" }\n").is_empty());
}
