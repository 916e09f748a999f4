//! The identity half of the `MetaStore` conformance suite: users, memberships both ways,
//! tokens (by hash, id and owner, last use), the directory of groups and projects, and trust
//! rules. Every backend, same cases, same assertions.

use crate::meta_conformance::{Subject, create_group, t};
use depot::domain::{
    ClaimCondition, MembershipTarget, NewToken, NewTrustRule, NewUser, Role, Scope, Timestamp,
    TokenGrant, TokenOwner,
};
use depot::store::StoreError;

fn user(name: &str, at: Timestamp) -> NewUser {
    NewUser {
        username: name.into(),
        admin: false,
        created_at: at,
    }
}

async fn users_and_memberships(s: Subject) {
    let m = s.meta.as_ref();
    let u = m
        .create_user(user("alice", t(1)), &crate::support::ev())
        .await
        .unwrap();
    assert!(matches!(
        m.create_user(user("alice", t(2)), &crate::support::ev())
            .await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(m.user_by_name("alice").await.unwrap(), Some(u.clone()));
    assert_eq!(m.user_by_name("bob").await.unwrap(), None);
    assert!(m.memberships_of(u.id).await.unwrap().is_empty());
    let group = MembershipTarget::Group("acme".into());
    m.set_membership(u.id, &group, Role::Guest, &crate::support::ev())
        .await
        .unwrap();
    m.set_membership(
        u.id,
        &MembershipTarget::Project(7),
        Role::Developer,
        &crate::support::ev(),
    )
    .await
    .unwrap();
    // Setting again changes the role; it does not add a second membership.
    m.set_membership(u.id, &group, Role::Maintainer, &crate::support::ev())
        .await
        .unwrap();
    let mut got: Vec<_> = m
        .memberships_of(u.id)
        .await
        .unwrap()
        .into_iter()
        .map(|x| (x.target, x.role))
        .collect();
    got.sort_by_key(|(t, _)| format!("{t:?}"));
    assert_eq!(
        got,
        vec![
            (group, Role::Maintainer),
            (MembershipTarget::Project(7), Role::Developer)
        ]
    );
}

async fn tokens(s: Subject) {
    let m = s.meta.as_ref();
    let user = m
        .create_user(user("alice", t(0)), &crate::support::ev())
        .await
        .unwrap();
    let sha = [7u8; 32];
    let token = m
        .create_token(
            NewToken {
                name: "deploy".into(),
                sha256: sha,
                grant: TokenGrant::Deploy {
                    target: MembershipTarget::Group("acme".into()),
                    scopes: vec![Scope::ReadPackageRegistry, Scope::WritePackageRegistry],
                },
                expires_at: Some(t(100)),
            },
            t(1),
            &crate::support::ev(),
        )
        .await
        .unwrap();
    assert_eq!(m.token_by_sha256(&sha).await.unwrap(), Some(token.clone()));
    assert_eq!(m.token_by_sha256(&[8u8; 32]).await.unwrap(), None);
    assert_eq!(m.token_by_id(token.id).await.unwrap(), Some(token.clone()));
    assert_eq!(m.token_by_id(token.id + 100).await.unwrap(), None);
    let personal = m
        .create_token(
            NewToken {
                name: "mine".into(),
                sha256: [9u8; 32],
                grant: TokenGrant::Personal {
                    user_id: user.id,
                    scopes: vec![Scope::Api],
                },
                expires_at: None,
            },
            t(2),
            &crate::support::ev(),
        )
        .await
        .unwrap();
    assert_ne!(personal.id, token.id);
    let job_grant = TokenGrant::Job {
        user_id: user.id,
        project_id: 12,
    };
    let job = NewToken {
        name: String::new(),
        sha256: [10u8; 32],
        grant: job_grant.clone(),
        expires_at: Some(t(50)),
    };
    let job = m
        .create_token(job, t(3), &crate::support::ev())
        .await
        .unwrap();
    let read_back = m.token_by_sha256(&[10u8; 32]).await.unwrap().unwrap();
    assert_eq!((read_back.grant, read_back.id), (job_grant, job.id));
    let revoked = m
        .revoke_token(token.id, &crate::support::ev())
        .await
        .unwrap();
    assert!(revoked.revoked);
    assert!(m.token_by_sha256(&sha).await.unwrap().unwrap().revoked);
    assert!(
        !m.token_by_sha256(&[9u8; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(matches!(
        m.revoke_token(424242, &crate::support::ev()).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn users_by_id_and_administrators(s: Subject) {
    let m = s.meta.as_ref();
    let admin = m
        .create_user(
            NewUser {
                admin: true,
                ..user("root", t(1))
            },
            &crate::support::ev(),
        )
        .await
        .unwrap();
    let plain = m
        .create_user(user("bob", t(2)), &crate::support::ev())
        .await
        .unwrap();
    assert!(admin.admin && !plain.admin);
    assert_eq!(m.user_by_id(admin.id).await.unwrap(), Some(admin.clone()));
    assert_eq!(m.user_by_name("root").await.unwrap(), Some(admin.clone()));
    assert_eq!(m.user_by_id(plain.id + 100).await.unwrap(), None);
    assert_eq!(m.users().await.unwrap(), vec![admin, plain]);
}

async fn members_both_ways(s: Subject) {
    let m = s.meta.as_ref();
    let (a, b) = (
        m.create_user(user("a", t(1)), &crate::support::ev())
            .await
            .unwrap(),
        m.create_user(user("b", t(2)), &crate::support::ev())
            .await
            .unwrap(),
    );
    let group = MembershipTarget::Group("acme".into());
    let project = MembershipTarget::Project(7);
    m.set_membership(b.id, &group, Role::Developer, &crate::support::ev())
        .await
        .unwrap();
    m.set_membership(a.id, &group, Role::Owner, &crate::support::ev())
        .await
        .unwrap();
    m.set_membership(a.id, &project, Role::Reporter, &crate::support::ev())
        .await
        .unwrap();
    let roles = |ms: Vec<depot::domain::Membership>| {
        ms.into_iter()
            .map(|x| (x.user_id, x.role))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        roles(m.members_of(&group).await.unwrap()),
        vec![(a.id, Role::Owner), (b.id, Role::Developer)]
    );
    // A change of role shows both ways.
    m.set_membership(b.id, &group, Role::Maintainer, &crate::support::ev())
        .await
        .unwrap();
    assert_eq!(
        roles(m.members_of(&group).await.unwrap()),
        vec![(a.id, Role::Owner), (b.id, Role::Maintainer)]
    );
    m.remove_membership(a.id, &group, &crate::support::ev())
        .await
        .unwrap();
    assert_eq!(
        roles(m.members_of(&group).await.unwrap()),
        vec![(b.id, Role::Maintainer)]
    );
    assert_eq!(m.memberships_of(a.id).await.unwrap().len(), 1);
    assert!(matches!(
        m.remove_membership(a.id, &group, &crate::support::ev())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        m.members_of(&MembershipTarget::Project(8))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn tokens_by_owner_and_last_use(s: Subject) {
    let m = s.meta.as_ref();
    let alice = m
        .create_user(user("alice", t(0)), &crate::support::ev())
        .await
        .unwrap();
    let group = MembershipTarget::Group("acme".into());
    let mut made = Vec::new();
    for (i, grant) in [
        TokenGrant::Personal {
            user_id: alice.id,
            scopes: vec![Scope::Api],
        },
        TokenGrant::Deploy {
            target: group.clone(),
            scopes: vec![Scope::ReadPackageRegistry],
        },
        TokenGrant::Personal {
            user_id: alice.id,
            scopes: vec![Scope::ReadApi],
        },
    ]
    .into_iter()
    .enumerate()
    {
        let new = NewToken {
            name: format!("t{i}"),
            sha256: [i as u8 + 1; 32],
            grant,
            expires_at: None,
        };
        made.push(
            m.create_token(new, t(i as i64), &crate::support::ev())
                .await
                .unwrap(),
        );
    }
    let ids = |ts: Vec<depot::domain::Token>| ts.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let mine = m.tokens_of(&TokenOwner::User(alice.id)).await.unwrap();
    assert_eq!(ids(mine.clone()), vec![made[0].id, made[2].id]);
    assert_eq!(mine[1].name, "t2");
    assert_eq!(
        ids(m.tokens_of(&TokenOwner::Target(group)).await.unwrap()),
        vec![made[1].id]
    );
    assert!(
        m.tokens_of(&TokenOwner::User(999))
            .await
            .unwrap()
            .is_empty()
    );
    // Revoked tokens are still listed, as revoked; a use is written down.
    m.revoke_token(made[2].id, &crate::support::ev())
        .await
        .unwrap();
    m.record_token_use(&made[0], t(500)).await.unwrap();
    let mine = m.tokens_of(&TokenOwner::User(alice.id)).await.unwrap();
    assert!(mine[1].revoked);
    assert_eq!(mine[0].last_used_at, Some(t(500)));
    let by_hash = m.token_by_sha256(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(by_hash.last_used_at, Some(t(500)));
    // Replacing a token revokes it and saves its successor in one step; a token revoked
    // already (a second, racing rotation) is not replaced again.
    let successor = |b: u8| NewToken {
        name: "t0".into(),
        sha256: [b; 32],
        grant: made[0].grant.clone(),
        expires_at: Some(t(9_000)),
    };
    let next = m
        .replace_token(made[0].id, successor(50), t(600), &crate::support::ev())
        .await
        .unwrap();
    assert!(m.token_by_id(made[0].id).await.unwrap().unwrap().revoked);
    assert_eq!(
        m.token_by_sha256(&[50; 32]).await.unwrap(),
        Some(next.clone())
    );
    assert!(matches!(
        m.replace_token(made[0].id, successor(51), t(601), &crate::support::ev())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(m.token_by_sha256(&[51; 32]).await.unwrap(), None);
    let mine = m.tokens_of(&TokenOwner::User(alice.id)).await.unwrap();
    assert!(mine.iter().any(|t| t.id == next.id));
}

async fn every_group_and_project(s: Subject) {
    let m = s.meta.as_ref();
    assert!(m.groups().await.unwrap().is_empty());
    let acme = create_group(m, "acme", t(1)).await.unwrap();
    let sub = create_group(m, "acme/sub", t(2)).await.unwrap();
    let other = create_group(m, "other", t(3)).await.unwrap();
    let p1 = m
        .create_project(
            &sub,
            "app",
            depot::domain::Visibility::Private,
            t(4),
            &crate::support::ev(),
        )
        .await
        .unwrap();
    let p2 = m
        .create_project(
            &other,
            "lib",
            depot::domain::Visibility::Public,
            t(5),
            &crate::support::ev(),
        )
        .await
        .unwrap();
    assert_eq!(m.groups().await.unwrap(), vec![acme, sub, other]);
    assert_eq!(m.projects().await.unwrap(), vec![p1, p2]);
    // A group saved with its first owner: the membership is there both ways at once.
    let boss = m
        .create_user(user("boss", t(6)), &crate::support::ev())
        .await
        .unwrap();
    let owned = m
        .create_group(
            depot::domain::NewGroup {
                path: "owned".into(),
                parent_id: None,
                created_at: t(7),
                owner: Some(boss.id),
            },
            &crate::support::ev(),
        )
        .await
        .unwrap();
    let target = MembershipTarget::Group(owned.path.clone());
    let members = m.members_of(&target).await.unwrap();
    assert_eq!((members.len(), members[0].role), (1, Role::Owner));
    assert_eq!(m.memberships_of(boss.id).await.unwrap()[0].target, target);
}

async fn trust_rules(s: Subject) {
    let m = s.meta.as_ref();
    let rule = |target: MembershipTarget, issuer: &str| NewTrustRule {
        target,
        issuer: issuer.into(),
        audience: "depot".into(),
        conditions: vec![ClaimCondition::parse("ref=refs/tags/v*").unwrap()],
        role: Role::Developer,
        scopes: vec![Scope::Api],
        created_at: t(1),
    };
    let (gl, gh) = (
        "https://gitlab.example.com",
        "https://token.actions.example.com",
    );
    let project = MembershipTarget::Project(7);
    let group = MembershipTarget::Group("acme".into());
    let r1 = m
        .create_trust_rule(rule(project.clone(), gl), &crate::support::ev())
        .await
        .unwrap();
    let r2 = m
        .create_trust_rule(rule(project.clone(), gh), &crate::support::ev())
        .await
        .unwrap();
    let r3 = m
        .create_trust_rule(rule(group.clone(), gl), &crate::support::ev())
        .await
        .unwrap();
    assert!(r1.id < r2.id && r2.id < r3.id);
    assert_eq!(r1.conditions[0].pattern, "refs/tags/v*");
    assert_eq!(
        m.trust_rules_of(&project).await.unwrap(),
        vec![r1.clone(), r2.clone()]
    );
    assert_eq!(m.trust_rules_of(&group).await.unwrap(), vec![r3.clone()]);
    assert_eq!(
        m.trust_rules_for_issuer(gl).await.unwrap(),
        vec![r1.clone(), r3.clone()]
    );
    assert_eq!(
        m.remove_trust_rule(r1.id, &crate::support::ev())
            .await
            .unwrap(),
        r1
    );
    assert_eq!(m.trust_rules_for_issuer(gl).await.unwrap(), vec![r3]);
    assert_eq!(m.trust_rules_of(&project).await.unwrap(), vec![r2]);
    assert!(matches!(
        m.remove_trust_rule(r1.id, &crate::support::ev()).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        m.trust_rules_for_issuer("https://nobody")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn web_sessions(s: Subject) {
    use depot::domain::WebSession;
    let m = s.meta.as_ref();
    let alice = m
        .create_user(user("alice", t(0)), &crate::support::ev())
        .await
        .unwrap();
    let session = WebSession {
        sha256: [3; 32],
        user_id: alice.id,
        token_id: 9,
        csrf: "form-token".into(),
        created_at: t(1),
        expires_at: t(3_600_000),
    };
    assert_eq!(m.web_session(&[3; 32]).await.unwrap(), None);
    m.create_web_session(&session).await.unwrap();
    assert_eq!(m.web_session(&[3; 32]).await.unwrap(), Some(session));
    assert_eq!(m.web_session(&[4; 32]).await.unwrap(), None);
    m.delete_web_session(&[3; 32]).await.unwrap();
    assert_eq!(m.web_session(&[3; 32]).await.unwrap(), None);
    // Signing out twice is harmless.
    m.delete_web_session(&[3; 32]).await.unwrap();
}

on_every_backend!(
    users_and_memberships,
    tokens,
    users_by_id_and_administrators,
    members_both_ways,
    tokens_by_owner_and_last_use,
    every_group_and_project,
    trust_rules,
    web_sessions,
);
