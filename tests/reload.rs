//! Hot reload: the routes file rewritten the ways files really change while clients stay
//! connected; invalid files keep the old routes; namespaces come and go.

use std::path::PathBuf;
use std::sync::Arc;

use switchboard::app::{App, ReloadOutcome, Watcher, watch};
use tokio::sync::watch::Receiver;

use crate::support::{TempDir, TestServer, Ws, get, start_app, within};

/// A server loaded from a file that is being watched.
struct Live {
    server: TestServer,
    app: Arc<App>,
    _watcher: Watcher,
    dir: TempDir,
    attempts: Receiver<u64>,
}

impl Live {
    async fn start(routes: &str) -> Live {
        let dir = TempDir::new("reload");
        let file = dir.write("routes.toml", routes);
        Live::start_file(dir, file).await
    }

    async fn start_file(dir: TempDir, file: PathBuf) -> Live {
        let app = Arc::new(App::load(&file, Some("127.0.0.1:0".to_owned())).unwrap());
        let mut attempts = app.reload_attempts();
        attempts.mark_unchanged();
        let watcher = watch(app.clone()).unwrap();
        let server = start_app(app.clone(), None).await;
        Live {
            server,
            app,
            _watcher: watcher,
            dir,
            attempts,
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("routes.toml")
    }

    /// Wait until the server has read new content (applied or refused).
    async fn reloaded(&mut self) {
        within("the reload", self.attempts.changed()).await.unwrap();
    }
}

const CHAT_IO: &str = "[namespaces.\"/\".events]\n\"chat message\" = \"io\"\n";
const CHAT_RELAYED: &str =
    "[namespaces.\"/\".events]\n\"chat message\" = { to = \"broadcast\", event = \"relayed\" }\n";

/// c1 sends, c2 listens; returns what c2 gets for one message.
async fn chat(c1: &mut Ws, c2: &mut Ws, text: &str) -> String {
    c1.send(&format!("42[\"chat message\",\"{text}\"]")).await;
    c2.recv_text().await
}

async fn two(live: &Live) -> (Ws, Ws) {
    let (c1, _) = Ws::socket(live.server.addr).await;
    let (c2, _) = Ws::socket(live.server.addr).await;
    (c1, c2)
}

#[tokio::test]
async fn an_in_place_write_is_picked_up_and_clients_stay_connected() {
    let mut live = Live::start(CHAT_IO).await;
    let (mut c1, mut c2) = two(&live).await;
    assert_eq!(
        chat(&mut c1, &mut c2, "a").await,
        r#"42["chat message","a"]"#
    );
    assert_eq!(c1.recv_text().await, r#"42["chat message","a"]"#);

    std::fs::write(live.file(), CHAT_RELAYED).unwrap();
    live.reloaded().await;
    assert_eq!(chat(&mut c1, &mut c2, "b").await, r#"42["relayed","b"]"#);
    assert_eq!(live.app.reload_status().reloads, 1);
}

#[tokio::test]
async fn an_editor_rename_over_the_file_is_picked_up() {
    let mut live = Live::start(CHAT_IO).await;
    let (mut c1, mut c2) = two(&live).await;
    let tmp = live.dir.write(".routes.toml.swp", CHAT_RELAYED);
    std::fs::rename(tmp, live.file()).unwrap();
    live.reloaded().await;
    assert_eq!(chat(&mut c1, &mut c2, "b").await, r#"42["relayed","b"]"#);
}

#[tokio::test]
async fn a_configmap_symlink_swap_is_picked_up() {
    // Kubernetes: routes.toml -> ..data/routes.toml, ..data -> ..v1; an update writes ..v2
    // and renames a new ..data symlink over the old one.
    let dir = TempDir::new("configmap");
    dir.write("..v1/routes.toml", CHAT_IO);
    std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/routes.toml", dir.path().join("routes.toml")).unwrap();
    let file = dir.path().join("routes.toml");
    let mut live = Live::start_file(dir, file).await;
    let (mut c1, mut c2) = two(&live).await;
    assert_eq!(
        chat(&mut c1, &mut c2, "a").await,
        r#"42["chat message","a"]"#
    );

    live.dir.write("..v2/routes.toml", CHAT_RELAYED);
    std::os::unix::fs::symlink("..v2", live.dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(
        live.dir.path().join("..data_tmp"),
        live.dir.path().join("..data"),
    )
    .unwrap();
    live.reloaded().await;
    c1.recv_text().await; // c1's own "a" from before the swap
    assert_eq!(chat(&mut c1, &mut c2, "b").await, r#"42["relayed","b"]"#);
}

#[tokio::test]
async fn a_deleted_then_recreated_file_is_picked_up_and_the_gap_changes_nothing() {
    let mut live = Live::start(CHAT_IO).await;
    let (mut c1, mut c2) = two(&live).await;
    std::fs::remove_file(live.file()).unwrap();
    live.reloaded().await;
    let status = live.app.reload_status();
    assert!(
        status
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot read"),
        "{status:?}"
    );
    assert_eq!(
        chat(&mut c1, &mut c2, "gap").await,
        r#"42["chat message","gap"]"#
    );
    c1.recv_text().await;

    std::fs::write(live.file(), CHAT_RELAYED).unwrap();
    live.reloaded().await;
    assert_eq!(chat(&mut c1, &mut c2, "b").await, r#"42["relayed","b"]"#);
}

#[tokio::test]
async fn an_invalid_file_keeps_the_old_routes_and_reports_every_error() {
    let mut live = Live::start(CHAT_IO).await;
    let (mut c1, mut c2) = two(&live).await;
    std::fs::write(
        live.file(),
        "[server]\nping_interval = \"often\"\n[namespaces.\"/\".events]\n\"chat message\" = \"everyone\"\n",
    )
    .unwrap();
    live.reloaded().await;
    let status = live.app.reload_status();
    let error = status.last_error.clone().unwrap();
    assert!(
        error.contains("routes.toml:2:17: `often` is not a duration"),
        "{error}"
    );
    assert!(
        error.contains("routes.toml:4:18: route of `chat message`: unknown target `everyone`"),
        "{error}"
    );
    assert_eq!((status.reloads, status.reload_failures), (0, 1));
    assert_eq!(
        chat(&mut c1, &mut c2, "old").await,
        r#"42["chat message","old"]"#
    );
    c1.recv_text().await;

    std::fs::write(live.file(), CHAT_RELAYED).unwrap();
    live.reloaded().await;
    assert_eq!(live.app.reload_status().last_error, None);
    assert_eq!(
        chat(&mut c1, &mut c2, "new").await,
        r#"42["relayed","new"]"#
    );
}

#[tokio::test]
async fn messages_around_the_swap_follow_the_old_routes_then_the_new_without_loss() {
    // c1 sends as fast as it can until the reload lands: no event rate limit.
    const UNLIMITED: &str = "[limits]\nevents_per_socket = \"off\"\n";
    let mut live = Live::start(&format!("{UNLIMITED}{CHAT_IO}")).await;
    let (mut c1, mut c2) = two(&live).await;
    let send = |n: u32| format!("42{n}[\"chat message\",{n}]");
    // Phase 1: 20 messages the server has answered (acked) before the file changes.
    for n in 0..20 {
        c1.send(&send(n)).await;
    }
    let mut own = Vec::new();
    loop {
        let t = c1.recv_text().await;
        if t == "4319[]" {
            break;
        }
        if t.starts_with("42[") {
            own.push(t);
        }
    }
    // Phase 2: the file changes while c1 keeps sending, without waiting.
    std::fs::write(live.file(), format!("{UNLIMITED}{CHAT_RELAYED}")).unwrap();
    let mut sent = 20;
    while !live.attempts.has_changed().unwrap() && sent < 10_000 {
        c1.send(&send(sent)).await;
        sent += 1;
        tokio::task::yield_now().await;
    }
    live.reloaded().await;
    // Phase 3: 20 more after the reload is done.
    let during = sent;
    for n in during..during + 20 {
        c1.send(&send(n)).await;
    }
    sent = during + 20;

    // c2 sees every message exactly once, in order: the old event name up to some k, the
    // new one from k on, with k at or after the write and at or before the reload's end.
    let mut switch = None;
    for n in 0..sent {
        let got = c2.recv_text().await;
        let old = format!("42[\"chat message\",{n}]");
        let new = format!("42[\"relayed\",{n}]");
        match switch {
            None if got == old => {}
            None if got == new => switch = Some(n),
            Some(_) if got == new => {}
            _ => panic!("message {n}: unexpected {got:?} (switched at {switch:?})"),
        }
    }
    let k = switch.expect("the new routes were used after the reload");
    assert!(
        (20..=during).contains(&k),
        "switched at {k}, expected within 20..={during}"
    );
    // c1 received its own messages (io) exactly up to k, and every ack.
    let mut acks = 20;
    while acks < sent {
        let t = c1.recv_text().await;
        if t.starts_with("42[") {
            own.push(t);
        } else {
            assert_eq!(t, format!("43{acks}[]"));
            acks += 1;
        }
    }
    let expected: Vec<String> = (0..k)
        .map(|n| format!("42[\"chat message\",{n}]"))
        .collect();
    assert_eq!(own, expected);
}

#[tokio::test]
async fn a_removed_namespace_disconnects_its_sockets_and_an_added_one_accepts_at_once() {
    let mut live = Live::start(&format!(
        "{CHAT_IO}[namespaces.\"/old\".events]\nx = \"io\"\n"
    ))
    .await;
    let (mut ws, _) = Ws::socket(live.server.addr).await;
    ws.connect_nsp("/old").await;
    ws.send("40/new,").await;
    assert_eq!(
        ws.recv_text().await,
        r#"44/new,{"message":"Invalid namespace"}"#
    );

    std::fs::write(
        live.file(),
        format!("{CHAT_IO}[namespaces.\"/new\".events]\nx = \"io\"\n"),
    )
    .unwrap();
    live.reloaded().await;
    assert_eq!(ws.recv_text().await, "41/old,");
    ws.connect_nsp("/new").await;
    ws.send("42/new,[\"x\",1]").await;
    assert_eq!(ws.recv_text().await, "42/new,[\"x\",1]");
    ws.send("42[\"chat message\",\"/ is untouched\"]").await;
    assert_eq!(
        ws.recv_text().await,
        "42[\"chat message\",\"/ is untouched\"]"
    );
}

#[tokio::test]
async fn auth_and_heartbeat_changes_apply_to_new_connections() {
    let mut live = Live::start(CHAT_IO).await;
    let (mut before, _) = Ws::socket(live.server.addr).await;
    std::fs::write(
        live.file(),
        format!(
            "[server]\nping_interval = \"7s\"\n[namespaces.\"/\".auth]\ntoken = [\"t\"]\n{CHAT_IO}"
        ),
    )
    .unwrap();
    live.reloaded().await;

    let (mut refused, open) = Ws::open(live.server.addr).await;
    assert!(open.contains(r#""pingInterval":7000"#), "{open}");
    refused.send("40").await;
    assert_eq!(refused.recv_text().await, r#"44{"message":"unauthorized"}"#);
    refused.send(r#"40{"token":"t"}"#).await;
    assert!(refused.recv_text().await.starts_with("40{\"sid\""));
    // The socket connected before the change keeps its session and its rights.
    before.send("42[\"chat message\",\"still here\"]").await;
    assert_eq!(
        before.recv_text().await,
        "42[\"chat message\",\"still here\"]"
    );
}

#[tokio::test]
async fn listen_and_path_need_a_restart_and_are_kept() {
    let mut live = Live::start(CHAT_IO).await;
    std::fs::write(
        live.file(),
        format!("[server]\nlisten = \"127.0.0.1:1\"\npath = \"/moved\"\n{CHAT_IO}"),
    )
    .unwrap();
    live.reloaded().await;
    assert_eq!(live.app.reload_status().reloads, 1);
    let (mut ws, _) = Ws::socket(live.server.addr).await; // still on /socket.io
    ws.send("42[\"chat message\",1]").await;
    assert_eq!(ws.recv_text().await, "42[\"chat message\",1]");
    assert_eq!(live.app.snapshot().routes.server.path, "/socket.io");
}

#[tokio::test]
async fn healthz_shows_the_reload_history() {
    let mut live = Live::start(CHAT_IO).await;
    let before: serde_json::Value =
        serde_json::from_str(get(live.server.addr, "/healthz").await.text()).unwrap();
    assert_eq!(before["status"], "ok");
    assert_eq!(before["reloads"], 0);
    assert_eq!(before["config_hash"].as_str().unwrap().len(), 64);

    std::fs::write(live.file(), "[namespaces.\"/\".events]\nx = \"nowhere\"\n").unwrap();
    live.reloaded().await;
    let failed: serde_json::Value =
        serde_json::from_str(get(live.server.addr, "/healthz").await.text()).unwrap();
    assert_eq!(failed["reload_failures"], 1);
    // The public port says that a reload was refused, never the file's text; the log and
    // the admin port have the details.
    assert_eq!(
        failed["last_error"],
        "reload refused; the server log has the details"
    );
    assert!(
        live.server
            .server
            .app()
            .reload_status()
            .last_error
            .unwrap()
            .contains("unknown target `nowhere`")
    );
    assert_eq!(failed["config_hash"], before["config_hash"]);

    std::fs::write(live.file(), CHAT_RELAYED).unwrap();
    live.reloaded().await;
    let after: serde_json::Value =
        serde_json::from_str(get(live.server.addr, "/healthz").await.text()).unwrap();
    assert_eq!(after["reloads"], 1);
    assert_eq!(after["last_error"], serde_json::Value::Null);
    assert_ne!(after["config_hash"], before["config_hash"]);
}

#[test]
fn sighup_reloads_the_running_binary() {
    use crate::support::process::{Process, binary};

    let dir = TempDir::new("sighup");
    let file = dir.write(
        "routes.toml",
        format!("[server]\nserve_client = false\n{CHAT_IO}"),
    );
    let mut command = binary(&file);
    command.env("RUST_LOG", "switchboard=debug");
    // Process::spawn reads the listening line and watches the log from a thread, so a
    // missing line fails the test instead of hanging it.
    let process = Process::spawn(command);
    process.log_line("Watching the routes file");
    process.signal("HUP");
    process.log_line("SIGHUP: reloading the routes file");
    let checked = process.log_line("Reload checked");
    assert!(checked.contains("Unchanged"), "{checked}");
}

#[tokio::test]
async fn a_rotated_public_key_file_is_picked_up() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt");
    let dir = TempDir::new("reload-key");
    dir.write(
        "keys/issuer.pem",
        std::fs::read(fixtures.join("rsa-public.pem")).unwrap(),
    );
    let file = dir.write(
        "routes.toml",
        format!(
            "[namespaces.\"/\".auth.jwt]\npublic_key = \"keys/issuer.pem\"\nalgorithms = [\"RS256\"]\n{CHAT_IO}"
        ),
    );
    let mut live = Live::start_file(dir, file).await;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = |private: &str| {
        let key =
            EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join(private)).unwrap()).unwrap();
        encode(
            &Header::new(Algorithm::RS256),
            &serde_json::json!({"sub": "a", "exp": exp}),
            &key,
        )
        .unwrap()
    };
    let answer = |live: &Live, token: String| {
        let addr = live.server.addr;
        async move {
            let (mut ws, _) = Ws::open(addr).await;
            ws.send(&format!(r#"40{{"token":"{token}"}}"#)).await;
            ws.recv_text().await
        }
    };
    assert!(
        answer(&live, token("rsa-private.pem"))
            .await
            .starts_with("40{\"sid\"")
    );

    // The issuer's key changes: only the key file, in a folder of its own, is rewritten.
    std::fs::write(
        live.dir.path().join("keys/issuer.pem"),
        std::fs::read(fixtures.join("rsa2-public.pem")).unwrap(),
    )
    .unwrap();
    live.reloaded().await;
    assert_eq!(
        answer(&live, token("rsa-private.pem")).await,
        r#"44{"message":"invalid token"}"#
    );
    assert!(
        answer(&live, token("rsa2-private.pem"))
            .await
            .starts_with("40{\"sid\"")
    );
}

/// routes.toml routing `hello` to scripts/hello.rhai, which acks "first": (script, routes).
fn hello_script(dir: &TempDir) -> (PathBuf, PathBuf) {
    let script = dir.write(
        "scripts/hello.rhai",
        "fn on_event(ctx, args) { ctx.ack(\"first\"); }\n",
    );
    let file = dir.write(
        "routes.toml",
        "[namespaces.\"/\".events]\nhello = { script = \"scripts/hello.rhai\" }\n",
    );
    (script, file)
}

#[tokio::test]
async fn an_edited_script_is_picked_up() {
    let dir = TempDir::new("reload-script");
    let (script, file) = hello_script(&dir);
    let mut live = Live::start_file(dir, file).await;
    let (mut ws, _) = Ws::socket(live.server.addr).await;
    ws.send(r#"420["hello"]"#).await;
    assert_eq!(ws.recv_text().await, r#"430["first"]"#);

    // Only the script changes, in a folder of its own.
    std::fs::write(&script, "fn on_event(ctx, args) { ctx.ack(\"second\"); }\n").unwrap();
    live.reloaded().await;
    ws.send(r#"421["hello"]"#).await;
    assert_eq!(ws.recv_text().await, r#"431["second"]"#);
}

#[test]
fn a_reload_says_which_named_file_changed() {
    let dir = TempDir::new("reload-says-file");
    let (script, file) = hello_script(&dir);
    let app = App::load(&file, Some("127.0.0.1:0".to_owned())).unwrap();
    std::fs::write(&script, "fn on_event(ctx, args) { ctx.ack(\"second\"); }\n").unwrap();
    let ReloadOutcome::Applied(changes) = app.reload() else {
        panic!("the script change is a reload");
    };
    assert_eq!(changes, vec![format!("`{}` changed", script.display())]);
}
