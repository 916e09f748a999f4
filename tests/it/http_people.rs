//! GitLab's people APIs over HTTP, on both store pairs: the signed-in user, personal tokens
//! (list, self, rotate, revoke), an administrator's users and tokens, deploy tokens, members
//! (direct and inherited, GitLab's rules), projects and groups (what each caller sees, making
//! them), and depot's trust-rule routes. Answers are checked against GitLab's shapes.

use crate::support::{Backend, TestApp};
use depot::domain::{Role, Scope};
use serde_json::{Value, json};

/// Group `g` (owned by `owner`) with private project `g/app` (`dev` a developer of it), an
/// administrator `root` and a user `outsider`; everyone's personal `api` token.
struct People {
    app: TestApp,
    project_id: i64,
    tokens: std::collections::HashMap<&'static str, String>,
}

impl People {
    async fn new(backend: Backend) -> Self {
        let app = TestApp::start(backend).await;
        app.group("g").await;
        let project_id = app.project("g/app", false).await;
        app.admin.create_user_as("root", true).await.unwrap();
        let mut tokens = std::collections::HashMap::new();
        for name in ["owner", "dev", "outsider"] {
            app.user(name).await;
        }
        app.member("owner", "g", Role::Owner).await;
        app.member("dev", "g/app", Role::Developer).await;
        for name in ["root", "owner", "dev", "outsider"] {
            tokens.insert(name, app.pat(name, &[Scope::Api], None).await.1);
        }
        Self {
            app,
            project_id,
            tokens,
        }
    }

    async fn call(&self, who: &str, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let token = self
            .tokens
            .get(who)
            .cloned()
            .unwrap_or_else(|| who.to_string());
        let mut headers = vec![("PRIVATE-TOKEN", token.as_str())];
        let bytes = match &body {
            Some(b) => {
                headers.push(("Content-Type", "application/json"));
                b.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let answer = self.app.send(method, uri, &headers, bytes).await;
        let json = if answer.body.is_empty() {
            Value::Null
        } else {
            answer.json()
        };
        (answer.status.as_u16(), json)
    }
}

async fn the_signed_in_user_and_their_tokens(backend: Backend) {
    let p = People::new(backend).await;
    let (status, me) = p.call("dev", "GET", "/api/v4/user", None).await;
    assert_eq!(status, 200);
    assert_eq!(me["username"], "dev");
    assert!(me["web_url"].as_str().unwrap().ends_with("/dev"));
    assert!(me.get("is_admin").is_none(), "{me}");
    let (_, root) = p.call("root", "GET", "/api/v4/user", None).await;
    assert_eq!(root["is_admin"], true);
    assert_eq!(p.call("nobody", "GET", "/api/v4/user", None).await.0, 401);

    let (status, mine) = p
        .call("dev", "GET", "/api/v4/personal_access_tokens", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert!(
        mine[0].get("token").is_none(),
        "a secret is shown once: {mine}"
    );
    let (_, this) = p
        .call("dev", "GET", "/api/v4/personal_access_tokens/self", None)
        .await;
    assert_eq!(
        (this["active"].clone(), this["scopes"].clone()),
        (json!(true), json!(["api"]))
    );
    // The first request wrote down its use.
    assert!(this["last_used_at"].is_string(), "{this}");
    // Another's token: 401 to a user, 404 to an administrator.
    let other = format!("/api/v4/personal_access_tokens/{}", this["id"]);
    assert_eq!(p.call("outsider", "GET", &other, None).await.0, 401);
    assert_eq!(p.call("root", "GET", &other, None).await.0, 200);
    assert_eq!(p.call("outsider", "DELETE", &other, None).await.0, 400);
    let unknown = "/api/v4/personal_access_tokens?user_id=99999";
    let (status, body) = p.call("root", "GET", unknown, None).await;
    assert_eq!((status, body), (404, json!({"message": "404 Not Found"})));
    let bad_state = "/api/v4/personal_access_tokens?state=maybe";
    assert_eq!(p.call("dev", "GET", bad_state, None).await.0, 400);
    let (_, active) = p
        .call(
            "dev",
            "GET",
            "/api/v4/personal_access_tokens?state=active",
            None,
        )
        .await;
    assert_eq!(active.as_array().unwrap().len(), 1);

    // Expiries a rotation may not give: past, or beyond a year.
    let rotate = "/api/v4/personal_access_tokens/self/rotate";
    for bad in ["2001-01-01", "2999-01-01"] {
        let body = Some(json!({"expires_at": bad}));
        assert_eq!(p.call("dev", "POST", rotate, body).await.0, 400, "{bad}");
    }
    // Rotation: a new secret, the old one refused at once as revoked.
    let (status, rotated) = p
        .call(
            "dev",
            "POST",
            "/api/v4/personal_access_tokens/self/rotate",
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["token"].as_str().unwrap().to_string();
    assert_ne!(rotated["id"], this["id"]);
    assert!(rotated["expires_at"].is_string());
    let (status, refused) = p.call("dev", "GET", "/api/v4/user", None).await;
    assert_eq!(
        (status, refused["error"].clone()),
        (401, json!("invalid_token"))
    );
    assert_eq!(p.call(&new, "GET", "/api/v4/user", None).await.0, 200);
    // Revoking itself: 204, then 401.
    assert_eq!(
        p.call(&new, "DELETE", "/api/v4/personal_access_tokens/self", None)
            .await
            .0,
        204
    );
    assert_eq!(p.call(&new, "GET", "/api/v4/user", None).await.0, 401);
}

async fn administrators_make_users_and_their_tokens(backend: Backend) {
    let p = People::new(backend).await;
    let body =
        json!({"username": "carol", "name": "Carol", "email": "c@example.com", "password": "x"});
    assert_eq!(
        p.call("dev", "POST", "/api/v4/users", Some(body.clone()))
            .await
            .0,
        403
    );
    let (status, carol) = p
        .call("root", "POST", "/api/v4/users", Some(body.clone()))
        .await;
    assert_eq!((status, carol["username"].clone()), (201, json!("carol")));
    let (status, taken) = p.call("root", "POST", "/api/v4/users", Some(body)).await;
    assert_eq!(
        (status, taken),
        (409, json!({"message": "Username has already been taken"}))
    );
    let uri = format!("/api/v4/users/{}/personal_access_tokens", carol["id"]);
    let in_a_month = depot::domain::Timestamp::now().plus_seconds(30 * 86_400);
    let day = in_a_month.to_iso8601()[..10].to_string();
    let token = json!({"name": "ci", "scopes": ["api"], "expires_at": day});
    assert_eq!(
        p.call("dev", "POST", &uri, Some(token.clone())).await.0,
        403
    );
    let (status, made) = p.call("root", "POST", &uri, Some(token)).await;
    assert_eq!((status, made["expires_at"].clone()), (201, json!(day)));
    let secret = made["token"].as_str().unwrap();
    let (_, me) = p.call(secret, "GET", "/api/v4/user", None).await;
    assert_eq!(me["username"], "carol");
    let bad = json!({"name": "x", "scopes": ["sudo"]});
    let (status, refused) = p.call("root", "POST", &uri, Some(bad)).await;
    assert_eq!(
        (status, refused),
        (400, json!({"error": "scopes does not have a valid value"}))
    );
    let (status, found) = p
        .call("dev", "GET", "/api/v4/users?username=carol", None)
        .await;
    assert_eq!((status, found[0]["id"].clone()), (200, carol["id"].clone()));
    let (_, everyone) = p.call("dev", "GET", "/api/v4/users", None).await;
    assert_eq!(everyone.as_array().unwrap().len(), 5, "{everyone}");
    let (_, searched) = p.call("dev", "GET", "/api/v4/users?search=CAR", None).await;
    assert_eq!(searched.as_array().unwrap().len(), 1);
    let dev = [("PRIVATE-TOKEN", p.tokens["dev"].as_str())];
    let paged = p.app.get("/api/v4/users?per_page=2&page=3", &dev).await;
    assert_eq!(paged.json().as_array().unwrap().len(), 1);
    assert_eq!(paged.header("x-total"), Some("5"));
}

async fn deploy_tokens_are_made_used_and_revoked(backend: Backend) {
    let p = People::new(backend).await;
    let uri = format!("/api/v4/projects/{}/deploy_tokens", p.project_id);
    let body = json!({"name": "ci", "scopes": ["read_package_registry", "write_package_registry"]});
    assert_eq!(p.call("dev", "POST", &uri, Some(body.clone())).await.0, 403);
    let (status, made) = p.call("owner", "POST", &uri, Some(body)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["username"],
        format!("gitlab+deploy-token-{}", made["id"])
    );
    let secret = made["token"].as_str().unwrap().to_string();
    let (_, listed) = p.call("owner", "GET", &uri, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("token").is_none());
    let file = format!(
        "/api/v4/projects/{}/packages/generic/pkg/1.0/f.txt",
        p.project_id
    );
    let put = p.app.put(&file, &[("DEPLOY-TOKEN", &secret)], b"x").await;
    assert_eq!(put.status.as_u16(), 201);
    let one = format!("{uri}/{}", made["id"]);
    assert_eq!(p.call("owner", "DELETE", &one, None).await.0, 204);
    let put = p.app.put(&file, &[("DEPLOY-TOKEN", &secret)], b"y").await;
    assert_eq!(put.status.as_u16(), 401);
    assert_eq!(p.call("owner", "GET", &one, None).await.0, 404);
    // A group's deploy tokens are its owners' to make.
    let group = "/api/v4/groups/g/deploy_tokens";
    let body = json!({"name": "all", "scopes": "read_package_registry"});
    let (status, _) = p.call("owner", "POST", group, Some(body)).await;
    assert_eq!(status, 201);
    // dev sees the group (a project of it), but reads its deploy tokens only as a maintainer.
    assert_eq!(p.call("dev", "GET", group, None).await.0, 403);
    assert_eq!(p.call("outsider", "GET", group, None).await.0, 404);
}

async fn members_follow_gitlabs_rules(backend: Backend) {
    let p = People::new(backend).await;
    let members = format!("/api/v4/projects/{}/members", p.project_id);
    let names = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["username"].as_str().unwrap().to_string(),
                    m["access_level"].as_i64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (status, direct) = p.call("dev", "GET", &members, None).await;
    assert_eq!((status, names(&direct)), (200, vec![("dev".into(), 30)]));
    let (_, all) = p.call("dev", "GET", &format!("{members}/all"), None).await;
    assert_eq!(
        names(&all),
        vec![("owner".to_string(), 50), ("dev".into(), 30)]
    );
    assert_eq!(p.call("nobody", "GET", &members, None).await.0, 401);
    assert_eq!(p.call("outsider", "GET", &members, None).await.0, 404);

    let (_, outsider) = p.call("outsider", "GET", "/api/v4/user", None).await;
    let add = json!({"user_id": outsider["id"], "access_level": 20});
    assert_eq!(
        p.call("dev", "POST", &members, Some(add.clone())).await.0,
        403
    );
    let (status, added) = p.call("owner", "POST", &members, Some(add.clone())).await;
    assert_eq!((status, added["access_level"].clone()), (201, json!(20)));
    let (status, again) = p.call("owner", "POST", &members, Some(add)).await;
    assert_eq!(
        (status, again),
        (409, json!({"message": "Member already exists"}))
    );
    let bad = json!({"username": "root", "access_level": 35});
    let (status, refused) = p.call("owner", "POST", &members, Some(bad)).await;
    let expected = json!({"message": {"access_level": ["is not included in the list"]}});
    assert_eq!((status, refused), (400, expected));
    let ghost = json!({"username": "ghost", "access_level": 30});
    let (status, refused) = p.call("owner", "POST", &members, Some(ghost)).await;
    assert_eq!(
        (status, refused),
        (404, json!({"message": "404 User Not Found"}))
    );

    let one = format!("{members}/{}", outsider["id"]);
    let (status, changed) = p
        .call("owner", "PUT", &one, Some(json!({"access_level": 30})))
        .await;
    assert_eq!((status, changed["access_level"].clone()), (200, json!(30)));
    // The outsider may now publish; removed, they may not even see the project.
    let file = format!(
        "/api/v4/projects/{}/packages/generic/pkg/1.0/o.txt",
        p.project_id
    );
    let put = p
        .app
        .put(&file, &[("PRIVATE-TOKEN", &p.tokens["outsider"])], b"o")
        .await;
    assert_eq!(put.status.as_u16(), 201);
    assert_eq!(p.call("owner", "DELETE", &one, None).await.0, 204);
    assert_eq!(p.call("owner", "GET", &one, None).await.0, 404);
    let put = p
        .app
        .put(&file, &[("PRIVATE-TOKEN", &p.tokens["outsider"])], b"o")
        .await;
    assert_eq!(put.status.as_u16(), 404);
    // A group keeps its last owner.
    let (_, owner) = p.call("owner", "GET", "/api/v4/user", None).await;
    let last = format!("/api/v4/groups/g/members/{}", owner["id"]);
    assert_eq!(p.call("owner", "DELETE", &last, None).await.0, 403);
    let lower = Some(json!({"access_level": 40}));
    assert_eq!(p.call("owner", "PUT", &last, lower).await.0, 403);
    // A project's maintainer can neither make nor unmake its owners.
    let (_, dev) = p.call("dev", "GET", "/api/v4/user", None).await;
    let dev_member = format!("{members}/{}", dev["id"]);
    let maintainer = Some(json!({"access_level": 40}));
    assert_eq!(p.call("owner", "PUT", &dev_member, maintainer).await.0, 200);
    let as_owner = json!({"user_id": outsider["id"], "access_level": 50});
    assert_eq!(
        p.call("dev", "POST", &members, Some(as_owner.clone()))
            .await
            .0,
        403
    );
    assert_eq!(
        p.call("owner", "POST", &members, Some(as_owner)).await.0,
        201
    );
    let lower = Some(json!({"access_level": 30}));
    assert_eq!(p.call("dev", "PUT", &one, lower).await.0, 403);
    assert_eq!(p.call("dev", "DELETE", &one, None).await.0, 403);
    assert_eq!(p.call("owner", "DELETE", &one, None).await.0, 204);
}

async fn projects_and_groups_as_each_caller_sees_them(backend: Backend) {
    let p = People::new(backend).await;
    let paths = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x["path_with_namespace"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (status, seen) = p.call("dev", "GET", "/api/v4/projects", None).await;
    assert_eq!((status, paths(&seen)), (200, vec!["g/app".to_string()]));
    assert_eq!(seen[0]["permissions"]["project_access"]["access_level"], 30);
    assert_eq!(seen[0]["namespace"]["full_path"], "g");
    let (_, none) = p.call("outsider", "GET", "/api/v4/projects", None).await;
    assert!(paths(&none).is_empty());
    let (status, one) = p.call("dev", "GET", "/api/v4/projects/g%2Fapp", None).await;
    assert_eq!((status, one["id"].as_i64()), (200, Some(p.project_id)));
    assert_eq!(
        p.call("outsider", "GET", "/api/v4/projects/g%2Fapp", None)
            .await
            .0,
        404
    );

    let (_, group) = p.call("owner", "GET", "/api/v4/groups/g", None).await;
    let new = json!({"name": "lib", "namespace_id": group["id"], "visibility": "public"});
    let (status, refused) = p
        .call("dev", "POST", "/api/v4/projects", Some(new.clone()))
        .await;
    assert_eq!(
        (status, refused),
        (400, json!({"message": {"namespace": ["is not valid"]}}))
    );
    let (status, made) = p
        .call("owner", "POST", "/api/v4/projects", Some(new.clone()))
        .await;
    assert_eq!(
        (status, made["path_with_namespace"].clone()),
        (201, json!("g/lib"))
    );
    let (status, _) = p.call("owner", "POST", "/api/v4/projects", Some(new)).await;
    assert_eq!(status, 400);
    // Public: everyone sees it, anonymous callers too.
    let anonymous = p.app.get("/api/v4/projects", &[]).await;
    assert_eq!(paths(&anonymous.json()), vec!["g/lib".to_string()]);

    let (_, groups) = p.call("owner", "GET", "/api/v4/groups", None).await;
    assert_eq!(groups[0]["full_path"], "g");
    let top = json!({"name": "Tools", "path": "tools"});
    assert_eq!(
        p.call("owner", "POST", "/api/v4/groups", Some(top.clone()))
            .await
            .0,
        403
    );
    let (status, tools) = p.call("root", "POST", "/api/v4/groups", Some(top)).await;
    assert_eq!((status, tools["full_path"].clone()), (201, json!("tools")));
    let sub = json!({"name": "Sub", "path": "sub", "parent_id": group["id"]});
    let (status, made) = p.call("owner", "POST", "/api/v4/groups", Some(sub)).await;
    assert_eq!((status, made["full_path"].clone()), (201, json!("g/sub")));
    let (_, owners) = p
        .call("owner", "GET", "/api/v4/groups/g%2Fsub/members", None)
        .await;
    assert_eq!(owners[0]["access_level"], 50);
}

async fn trust_rules_over_http(backend: Backend) {
    let p = People::new(backend).await;
    let uri = format!("/api/v4/projects/{}/trust_rules", p.project_id);
    let rule = json!({
        "issuer": "https://gitlab.example.com", "audience": "https://depot.example",
        "conditions": {"project_path": "team/app", "ref": "v*"}, "access_level": 30
    });
    assert_eq!(p.call("dev", "POST", &uri, Some(rule.clone())).await.0, 403);
    let (status, made) = p.call("owner", "POST", &uri, Some(rule)).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        made["conditions"],
        json!({"project_path": "team/app", "ref": "v*"})
    );
    assert_eq!(made["project_id"].as_i64(), Some(p.project_id));
    let (_, listed) = p.call("owner", "GET", &uri, None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let pin = json!({"project_path": "team/app"});
    for (issuer, conditions) in [
        // Not https; inside depot's network (an operator may, from the command line).
        ("http://gitlab.example.com", pin.clone()),
        ("https://127.0.0.1:8443", pin.clone()),
        ("https://localhost", pin.clone()),
        // Trusting every pipeline of the issuer: anyone's, on a shared service.
        ("https://gitlab.example.com", json!({})),
        ("https://gitlab.example.com", json!({"ref": "v*"})),
        (
            "https://gitlab.example.com",
            json!({"project_path": "*/app"}),
        ),
    ] {
        let rule = json!({"issuer": issuer, "audience": "a", "conditions": conditions});
        let (status, body) = p.call("owner", "POST", &uri, Some(rule)).await;
        assert_eq!(status, 400, "{issuer} {conditions}: {body}");
    }
    let one = format!("{uri}/{}", made["id"]);
    assert_eq!(p.call("owner", "DELETE", &one, None).await.0, 204);
    assert_eq!(p.call("owner", "DELETE", &one, None).await.0, 404);
}

on_every_backend!(
    the_signed_in_user_and_their_tokens,
    administrators_make_users_and_their_tokens,
    deploy_tokens_are_made_used_and_revoked,
    members_follow_gitlabs_rules,
    projects_and_groups_as_each_caller_sees_them,
    trust_rules_over_http,
);
