//! Real clients against real processes: Debian's `telnet` driven by `expect`, and Debian's
//! Chromium driven by playwright-core. `scripts/install-test-deps.sh` installs them.

mod util;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{Scene, Telnet, Up, Web, run, server, within};

const LIMIT: Duration = Duration::from_secs(90);

fn e2e() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

fn require(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "`{tool}` is missing: {hint}");
}

/// A client script run from tests/e2e, its output captured, killed if the test ends first.
fn script(program: &str, args: &[std::ffi::OsString]) -> tokio::process::Child {
    tokio::process::Command::new(program)
        .args(args)
        .current_dir(e2e())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[test]
fn debian_telnet_chats_with_a_web_user() {
    require("expect", "run scripts/install-test-deps.sh");
    require("telnet", "run scripts/install-test-deps.sh");
    let scene = Scene::new();
    let _kernel = scene.kernel();
    let (_tcp, tcp_addr) = scene.frontend("twisted", "tcp", &[]);
    let (_ws, ws_addr) = scene.frontend("web", "ws", &[]);
    run(LIMIT, async {
        let mut peer = Web::connect(ws_addr).await;
        peer.login("webpeer").await;
        let telnet = script(
            "expect",
            &[e2e().join("telnet.exp").into(), tcp_addr.port().to_string().into()],
        );
        peer.until("[SYSTEM INFO] - [telnetuser] login to chat.").await;
        let line = peer.text().await;
        assert!(
            line.ends_with("[telnetuser][->][webpeer]: hi from a real telnet"),
            "{line}"
        );
        peer.send("msgall hello telnet").await;
        let out = within("the telnet script", telnet.wait_with_output()).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "telnet script failed:\n{stdout}");
        assert!(stdout.contains("\nOK"), "{stdout}");
        // The colours reached the real terminal too.
        assert!(stdout.contains("\u{1b}[32m[SYSTEM INFO]\u{1b}[0m"), "{stdout}");
    });
}

#[test]
fn chromium_chats_with_a_telnet_user() {
    require("node", "install Node.js");
    require("chromium", "run scripts/install-test-deps.sh");
    assert!(
        e2e().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/install-test-deps.sh"
    );
    let scene = Scene::new();
    let _kernel = scene.kernel();
    let (_tcp, tcp_addr) = scene.frontend("twisted", "tcp", &["--color", "false"]);
    let (_ws, ws_addr) = scene.frontend("web", "ws", &[]);
    let screenshot = std::env::var_os("CHAT_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| scene.dir.path().join("page.png"));
    run(LIMIT, async {
        let mut tuser = Telnet::connect(tcp_addr).await;
        tuser.login("tuser").await;
        let page = format!("http://{ws_addr}/");
        let browser = script(
            "node",
            &[e2e().join("browser.mjs").into(), page.into(), screenshot.clone().into()],
        );
        let before = tuser.until("[SYSTEM INFO] - [webuser] login to chat.").await;
        assert!(before.is_empty(), "{before:?}");
        let line = tuser.line().await;
        assert!(line.ends_with("][webuser]: hello from chromium"), "{line}");
        tuser.send("msg webuser hello back from telnet").await;
        tuser.line().await;
        // Someone logs in after the page did: the page lists them without asking the server.
        let mut late = Telnet::connect(tcp_addr).await;
        late.login("late").await;
        tuser.until("[SYSTEM INFO] - [late] login to chat.").await;
        tuser.send("msgall <img src=x onerror=alert(1)>").await;
        tuser.line().await;
        let line = tuser.line().await;
        assert!(line.ends_with("][webuser][->][tuser]: just for you"), "{line}");
        late.send("logout").await;
        tuser.until("[SYSTEM INFO] - [late] logout from chat.").await;
        assert_eq!(tuser.line().await, "[SYSTEM INFO] - [webuser] logout from chat.");

        let output = within("the browser script", browser.wait_with_output()).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "browser script failed:\n{stdout}\n{stderr}");
        assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
    });
}

#[test]
fn chromium_on_a_phone_screen_fits_and_shows_the_user_list() {
    require("node", "install Node.js");
    require("chromium", "run scripts/install-test-deps.sh");
    assert!(
        e2e().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/install-test-deps.sh"
    );
    let scene = Scene::new();
    let _kernel = scene.kernel();
    let (_tcp, tcp_addr) = scene.frontend("twisted", "tcp", &["--color", "false"]);
    let (_ws, ws_addr) = scene.frontend("web", "ws", &[]);
    // CHAT_PHONE_SCREENSHOT keeps the page at 375 px (and the same with `-users`: the list open)
    // to look at.
    let screenshot = std::env::var_os("CHAT_PHONE_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| scene.dir.path().join("phone.png"));
    run(LIMIT, async {
        let mut tuser = Telnet::connect(tcp_addr).await;
        tuser.login("tuser").await;
        let page = format!("http://{ws_addr}/");
        let browser = script(
            "node",
            &[e2e().join("phone.mjs").into(), page.into(), screenshot.clone().into()],
        );
        tuser.until("[SYSTEM INFO] - [phoneuser] login to chat.").await;
        let line = tuser.line().await;
        assert!(line.ends_with("][phoneuser]: hello from a phone"), "{line}");
        let output = within("the phone script", browser.wait_with_output()).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "phone script failed:\n{stdout}\n{stderr}");
        assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
        for measure in stdout.lines().filter(|l| l.starts_with("measure:")) {
            eprintln!("{measure}");
        }
    });
}

/// The page across its server's death (kill -9: the WebSocket is handed to the next process, the
/// page notices nothing) and a stop and start (the WebSocket closes: the page reconnects quietly,
/// under the same name, without showing the login panel).
#[test]
fn chromium_rides_out_its_server_dying_and_restarting() {
    require("node", "install Node.js");
    require("chromium", "run scripts/install-test-deps.sh");
    assert!(
        e2e().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/install-test-deps.sh"
    );
    let mut up = Up::start(&format!("{}{}", server("twisted", "tcp"), server("web", "ws")));
    let (tcp_addr, _) = up.listening("twisted");
    let (ws_addr, web_pid) = up.listening("web");
    run(LIMIT, async {
        let mut tuser = Telnet::connect(tcp_addr).await;
        tuser.login("tuser").await;
        let browser = script(
            "node",
            &[e2e().join("reconnect.mjs").into(), format!("http://{ws_addr}/").into()],
        );
        tuser.until("[SYSTEM INFO] - [webuser] login to chat.").await;

        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(web_pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        tokio::task::block_in_place(|| up.listening("web"));
        tuser.send("msgall after the kill").await;
        let seen = tuser.until_has("after the kill").await;
        assert!(seen.is_empty(), "the kill showed on the telnet side: {seen:?}");

        let out = tokio::task::block_in_place(|| up.cli(&["stop", "web"]));
        assert!(out.status.success(), "{out:?}");
        tuser.until("[SYSTEM INFO] - [webuser] logout from chat.").await;
        let out = tokio::task::block_in_place(|| up.cli(&["start", "web"]));
        assert!(out.status.success(), "{out:?}");
        // The page comes back by itself; if it does not, what it saw and sent says why.
        let back = tokio::time::timeout(Duration::from_secs(20), async {
            while tuser.line().await != "[SYSTEM INFO] - [webuser] login to chat." {}
        });
        if back.await.is_err() {
            let mut browser = browser;
            let _ = browser.kill().await;
            let output = browser.wait_with_output().await.unwrap();
            panic!(
                "the page did not log in again; it said:\n{}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        tuser.send("msgall after the restart").await;

        let output = within("the browser script", browser.wait_with_output()).await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "browser script failed:\n{stdout}\n{stderr}");
        assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
    });
}
