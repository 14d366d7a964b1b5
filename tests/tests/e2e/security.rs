//! Who may read and do what: logs of other projects, tokens after refresh and deletion,
//! archives of other users, project roles, the `Authorization` scheme's case.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::{
    Body, Dstack, decode_messages, free_port, http_client, latest_submission, multipart_file,
    run_spec, sha256_hex, small, task, wait_until,
};

/// User B, a member of `p2` only, tries to read user A's run in `main` through `logs/poll`:
/// path traversal in `run_name`, A's run name in B's project, B's run name with A's job
/// submission, and `main` itself. Every attempt is refused and never returns A's text.
#[test]
fn logs_poll_cannot_read_another_projects_logs() {
    let d = Dstack::start("logs-xproject");
    let secret = format!("TOPSECRET-{}", std::process::id());
    d.submit(
        "main",
        &d.token,
        &task("secret-run", &[&format!("echo {secret}")]),
    );
    let run = d.wait_finished("main", &d.token, "secret-run");
    let (text, _) = d.logs_text("main", &d.token, &run, 1000);
    assert!(text.contains(&secret), "A reads its own logs: {text:?}");
    let a_submission = latest_submission(&run);

    let b = d.create_user("bob");
    d.create_project(&b, "p2");
    d.submit("p2", &b, &task("b-run", &["echo hello from b"]));
    let b_run = d.wait_finished("p2", &b, "b-run");
    let (text, _) = d.logs_text("p2", &b, &b_run, 1000);
    assert!(
        text.contains("hello from b"),
        "B reads its own logs: {text:?}"
    );

    let server_dir = d.home.join(".dstack/server");
    let variants = [
        "../../main/logs/secret-run".to_string(),
        "../../../projects/main/logs/secret-run".into(),
        "b-run/../../../main/logs/secret-run".into(),
        "./../../main/logs/secret-run".into(),
        "../../main/logs/secret-run/".into(),
        format!("{}/projects/main/logs/secret-run", server_dir.display()),
        "secret-run".into(),
        "b-run".into(),
    ];
    let mut problems = Vec::new();
    for name in &variants {
        let r = d.poll_logs("p2", &b, name, &a_submission, None, 1000);
        let leaked = r.json["logs"]
            .as_array()
            .map(|e| decode_messages(e))
            .unwrap_or_default();
        if leaked.contains(&secret) || r.text.contains(&secret) {
            problems.push(format!("run_name {name:?}: LEAKED A's log: {r}"));
        } else if (r.status, r.error_code()) != (400, Some("resource_not_exists")) {
            problems.push(format!(
                "run_name {name:?}: want 400 resource_not_exists, got {r}"
            ));
        }
    }
    let r = d.poll_logs("main", &b, "secret-run", &a_submission, None, 1000);
    if r.status != 403 || r.text.contains(&secret) {
        problems.push(format!("B polling main: want 403, got {r}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn get_my_user(d: &Dstack, token: &str) -> crate::util::Resp {
    d.call(
        "POST",
        "/api/users/get_my_user",
        Some(&format!("Bearer {token}")),
        Body::Empty,
    )
}

/// `users/refresh_token` (by the user or an admin) replaces the token: the old one gets 403 on
/// the API and on the service proxy. `users/delete` revokes the user's token the same way.
#[test]
fn refreshed_and_deleted_tokens_stop_working_on_the_api_and_the_proxy() {
    let d = Dstack::start("tokens");
    let x = d.create_user("xavier");
    d.add_member("main", "xavier", "user");
    let y = d.create_user("yvonne");
    let port = free_port();
    d.submit(
        "main",
        &d.token,
        &json!({
            "type": "service", "name": "web", "port": port, "resources": small(),
            "commands": [format!("exec python3 -m http.server {port} --bind 127.0.0.1")],
        }),
    );
    d.wait_running("main", &d.token, "web");
    let proxy_client = http_client(Duration::from_secs(10));
    let proxy = |token: &str| -> u16 {
        proxy_client
            .get(format!("{}/proxy/services/main/web/", d.url))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .map_or(0, |r| r.status().as_u16())
    };
    assert!(
        wait_until(Duration::from_secs(30), || proxy(&x) == 200),
        "the service never answered through the proxy with X's token (last: {})",
        proxy(&x)
    );
    assert_eq!(get_my_user(&d, &x).status, 200);

    // Someone else (not an admin) may not refresh X's token.
    let r = d.post(
        "/api/users/refresh_token",
        &y,
        &json!({"username": "xavier"}),
    );
    assert_eq!(r.status, 403, "Y refreshing X's token: {r}");
    assert_eq!(get_my_user(&d, &x).status, 200, "X's token still works");

    // X refreshes its own token.
    let r = d.post(
        "/api/users/refresh_token",
        &x,
        &json!({"username": "xavier"}),
    );
    assert_eq!(r.status, 200, "X refreshing its own token: {r}");
    assert_eq!(r.json["username"], "xavier", "{r}");
    let x2 = r.json["creds"]["token"]
        .as_str()
        .expect("UserWithCreds.creds.token")
        .to_string();
    assert_ne!(x2, x, "a new token");
    let r = get_my_user(&d, &x);
    assert_eq!(r.status, 403, "the old token on the API: {r}");
    let r = get_my_user(&d, &x2);
    assert_eq!(
        (r.status, r.json["username"].clone()),
        (200, json!("xavier")),
        "{r}"
    );
    assert!(
        wait_until(Duration::from_secs(3), || proxy(&x) == 403),
        "the old token on the proxy: {}",
        proxy(&x)
    );
    assert!(
        wait_until(Duration::from_secs(5), || proxy(&x2) == 200),
        "the new token on the proxy: {}",
        proxy(&x2)
    );

    // An admin refreshes X's token.
    let r = d.admin("/api/users/refresh_token", &json!({"username": "xavier"}));
    assert_eq!(r.status, 200, "the admin refreshing X's token: {r}");
    let x3 = r.json["creds"]["token"]
        .as_str()
        .expect("UserWithCreds.creds.token")
        .to_string();
    assert_ne!(x3, x2);
    assert_eq!(get_my_user(&d, &x2).status, 403, "the replaced token");
    assert_eq!(get_my_user(&d, &x3).status, 200, "the admin-issued token");
    assert!(
        wait_until(Duration::from_secs(3), || proxy(&x2) == 403),
        "the replaced token on the proxy: {}",
        proxy(&x2)
    );

    // Deleting X revokes its token.
    let r = d.admin("/api/users/delete", &json!({"users": ["xavier"]}));
    assert_eq!(r.status, 200, "users/delete: {r}");
    let r = get_my_user(&d, &x3);
    assert_eq!(r.status, 403, "a deleted user's token on the API: {r}");
    assert!(
        wait_until(Duration::from_secs(3), || proxy(&x3) == 403),
        "a deleted user's token on the proxy: {}",
        proxy(&x3)
    );
    // The admin still gets through.
    assert_eq!(proxy(&d.token), 200);
}

/// A tar holding one file `note.txt`.
fn tar_of_one_file(dir: &std::path::Path, content: &str) -> Vec<u8> {
    std::fs::write(dir.join("note.txt"), content).expect("write");
    let out = std::process::Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(dir)
        .arg("note.txt")
        .output()
        .expect("tar runs");
    assert!(out.status.success());
    out.stdout
}

fn upload(d: &Dstack, path: &str, token: &str, filename: &str, data: &[u8]) -> crate::util::Resp {
    let (body, content_type) = multipart_file(filename, data);
    d.call(
        "POST",
        path,
        Some(&format!("Bearer {token}")),
        Body::Raw(body, content_type),
    )
}

/// File archives belong to the user who uploaded them: another user can neither find them by
/// hash nor mount them by id. Uploads whose content does not hash to their name are refused.
#[test]
fn archives_are_private_and_must_match_their_hash() {
    let d = Dstack::start("archives");
    let b = d.create_user("bob");
    d.add_member("main", "bob", "user");
    let data = tar_of_one_file(&d.home.dir("a-files"), "A's private note\n");
    let hash = sha256_hex(&data);
    let r = upload(&d, "/api/files/upload_archive", &d.token, &hash, &data);
    assert_eq!(r.status, 200, "A uploads an archive: {r}");
    let id = r.json["id"].as_str().expect("archive id").to_string();

    // A can use it (control).
    let mut spec = run_spec(&task("own", &["cat note-copy.txt"]));
    spec["file_archives"] = json!([{"id": id, "path": "note-copy.txt"}]);
    let r = d.apply_spec("main", &d.token, &spec);
    assert_eq!(r.status, 200, "A mounts its own archive: {r}");
    let run = d.wait_finished("main", &d.token, "own");
    let (text, _) = d.logs_text("main", &d.token, &run, 1000);
    assert!(text.contains("A's private note"), "{run}\n{text:?}");

    let mut problems = Vec::new();
    let r = d.post("/api/files/get_archive_by_hash", &b, &json!({"hash": hash}));
    if r.status != 400 || r.text.contains(&id) {
        problems.push(format!("B looks up A's archive by hash: want 400, got {r}"));
    }
    let mut spec = run_spec(&task("steal", &["cat note-copy.txt"]));
    spec["file_archives"] = json!([{"id": id, "path": "note-copy.txt"}]);
    let r = d.apply_spec("main", &b, &spec);
    if r.status != 400 {
        problems.push(format!("B mounts A's archive by id: want 400, got {r}"));
    }

    // Content that does not hash to the name.
    let other = sha256_hex(b"something else");
    let r = upload(&d, "/api/files/upload_archive", &d.token, &other, &data);
    if r.status != 400 {
        problems.push(format!(
            "upload_archive whose content's SHA-256 is not its name: want 400, got {r}"
        ));
    }
    let r = upload(
        &d,
        "/api/project/main/repos/upload_code?repo_id=none",
        &d.token,
        &hash,
        &data,
    );
    if r.status != 200 {
        problems.push(format!("upload_code with the right hash (control): {r}"));
    }
    let r = upload(
        &d,
        "/api/project/main/repos/upload_code?repo_id=none",
        &d.token,
        &other,
        &data,
    );
    if r.status != 400 {
        problems.push(format!(
            "upload_code whose content's SHA-256 is not its name: want 400, got {r}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The API accepts the `Bearer` scheme in any case, as the proxy does (RFC 9110: schemes are
/// case-insensitive).
#[test]
fn authorization_scheme_is_case_insensitive() {
    let d = Dstack::start("bearer-case");
    let mut problems = Vec::new();
    for scheme in ["Bearer", "bearer", "BEARER", "BeArEr"] {
        let r = d.call(
            "POST",
            "/api/users/get_my_user",
            Some(&format!("{scheme} {}", d.token)),
            Body::Empty,
        );
        if r.status != 200 || r.json["username"] != "admin" {
            problems.push(format!("{scheme}: {r}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn members_of(d: &Dstack, project: &str) -> Vec<(String, String)> {
    let r = d.admin(&format!("/api/projects/{project}/get"), &Value::Null);
    assert_eq!(r.status, 200, "{r}");
    let mut members: Vec<(String, String)> = r.json["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["user"]["username"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                m["project_role"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    members.sort();
    members
}

/// Project roles as the original enforces them (`services/projects.py`): a manager cannot add
/// admins (nor promote itself), cannot change the set of admins with `set_members` (so not
/// empty the project either), cannot remove admins (the owner is one); nobody can remove all
/// admins; a username twice in one request is refused.
#[test]
fn project_managers_cannot_touch_admins() {
    let d = Dstack::start("roles");
    let owner = d.create_user("owner");
    let mgr = d.create_user("mgr");
    let usr = d.create_user("usr");
    d.create_user("other");
    d.create_project(&owner, "team");
    let r = d.post(
        "/api/projects/team/add_members",
        &owner,
        &json!({"members": [{"username": "mgr", "project_role": "manager"},
                            {"username": "usr", "project_role": "user"}]}),
    );
    assert_eq!(r.status, 200, "the owner adds a manager and a user: {r}");
    let before = members_of(&d, "team");
    let pair = |u: &str, r: &str| (u.to_string(), r.to_string());
    assert_eq!(
        before,
        vec![
            pair("mgr", "manager"),
            pair("owner", "admin"),
            pair("usr", "user")
        ]
    );

    let add = "/api/projects/team/add_members";
    let set = "/api/projects/team/set_members";
    let remove = "/api/projects/team/remove_members";
    let baseline = json!({"members": [{"username": "owner", "project_role": "admin"},
                                      {"username": "mgr", "project_role": "manager"},
                                      {"username": "usr", "project_role": "user"}]});
    let mut problems = Vec::new();
    // Each check starts from the same members: a wrongly accepted request is undone (by the
    // global admin) so that it does not change what the next check sees.
    let mut expect = |what: &str, r: crate::util::Resp, status: u16, msg: &str| {
        if r.status != status || !r.error_message().contains(msg) {
            problems.push(format!("{what}: want {status} {msg:?}, got {}", r.short()));
        }
        let now = members_of(&d, "team");
        if now != before {
            problems.push(format!("{what}: changed the members to {now:?}"));
            let r = d.admin(set, &baseline);
            assert_eq!(r.status, 200, "restoring the members: {r}");
            assert_eq!(members_of(&d, "team"), before, "restoring the members");
        }
    };
    expect(
        "manager adds an admin",
        d.post(
            add,
            &mgr,
            &json!({"members": [{"username": "other", "project_role": "admin"}]}),
        ),
        403,
        "Access denied: only global admins can add project admins",
    );
    expect(
        "manager promotes itself with add_members",
        d.post(
            add,
            &mgr,
            &json!({"members": [{"username": "mgr", "project_role": "admin"}]}),
        ),
        403,
        "Access denied: only global admins can add project admins",
    );
    expect(
        "manager promotes itself with set_members",
        d.post(
            set,
            &mgr,
            &json!({"members": [{"username": "owner", "project_role": "admin"},
                                {"username": "mgr", "project_role": "admin"},
                                {"username": "usr", "project_role": "user"}]}),
        ),
        403,
        "Access denied: changing project admins",
    );
    expect(
        "manager empties the project with set_members []",
        d.post(set, &mgr, &json!({"members": []})),
        403,
        "Access denied: changing project admins",
    );
    expect(
        "manager removes the owner (an admin)",
        d.post(remove, &mgr, &json!({"usernames": ["owner"]})),
        403,
        "Access denied: only global admins can remove project admins",
    );
    expect(
        "a plain member adds a member",
        d.post(
            add,
            &usr,
            &json!({"members": [{"username": "other", "project_role": "user"}]}),
        ),
        403,
        "",
    );
    expect(
        "the same user twice in add_members",
        d.post(
            add,
            &owner,
            &json!({"members": [{"username": "other", "project_role": "user"},
                                {"username": "other", "project_role": "manager"}]}),
        ),
        400,
        "Cannot add same user multiple times",
    );
    expect(
        "the same user twice in set_members",
        d.post(
            set,
            &owner,
            &json!({"members": [{"username": "owner", "project_role": "admin"},
                                {"username": "usr", "project_role": "user"},
                                {"username": "usr", "project_role": "manager"}]}),
        ),
        400,
        "Cannot add same user multiple times",
    );
    expect(
        "a global admin removes the only project admin",
        d.admin(remove, &json!({"usernames": ["owner"]})),
        400,
        "Cannot remove all project admins",
    );
    // What a manager may do (control).
    let r = d.post(
        add,
        &mgr,
        &json!({"members": [{"username": "other", "project_role": "user"}]}),
    );
    if r.status != 200 {
        problems.push(format!("manager adds a user: {r}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
