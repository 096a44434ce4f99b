//! A go-micro handler and its Rust port, side by side.
//!
//! The Go service below keeps user sessions in go-micro's `store.Store`. Each Rust function
//! is the port of the Go function in the comment above it: the same calls, options and
//! error handling, on `store_compat`'s `Store` trait.
//!
//! Run it with `cargo run -p examples --features compat --example go_micro_port`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use store_compat::{
    DeleteOptions, Error, ListOptions, Options, ReadOptions, Record, Store, StoreAdapter,
    WriteOptions,
};

// type Session struct {
//     User    string `json:"user"`
//     Device  string `json:"device"`
// }
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Session {
    user: String,
    device: String,
}

// type Sessions struct {
//     store store.Store
// }
//
// func NewSessions(s store.Store) (*Sessions, error) {
//     if err := s.Init(store.Database("auth"), store.Table("sessions")); err != nil {
//         return nil, err
//     }
//     return &Sessions{store: s}, nil
// }
struct Sessions {
    store: Arc<dyn Store>,
}

impl Sessions {
    async fn new(store: Arc<dyn Store>) -> Result<Self, Error> {
        store
            .init(Options::default().database("auth").table("sessions"))
            .await?;
        Ok(Self { store })
    }

    // func (s *Sessions) Start(id string, sess *Session) error {
    //     rec := store.NewRecord("session/"+id, sess)
    //     rec.Metadata["issued_by"] = "login"
    //     rec.Metadata["generation"] = 1
    //     return s.store.Write(rec, store.WriteTTL(30*time.Minute))
    // }
    async fn start(&self, id: &str, session: &Session) -> Result<(), Error> {
        let record = Record::from_json(format!("session/{id}"), session)?
            .with_metadata("issued_by", json!("login"))
            .with_metadata("generation", json!(1));
        self.store
            .write(
                record,
                WriteOptions::default().ttl(Duration::from_secs(30 * 60)),
            )
            .await
    }

    // func (s *Sessions) Get(id string) (*Session, error) {
    //     recs, err := s.store.Read("session/" + id)
    //     if err == store.ErrNotFound {
    //         return nil, errors.Unauthorized("sessions", "no session %s", id)
    //     } else if err != nil {
    //         return nil, err
    //     }
    //     var sess Session
    //     return &sess, recs[0].Decode(&sess)
    // }
    async fn get(&self, id: &str) -> Result<Option<(Session, Record)>, Error> {
        let records = match self
            .store
            .read(&format!("session/{id}"), ReadOptions::default())
            .await
        {
            Err(Error::NotFound) => return Ok(None),
            other => other?,
        };
        let record = records.into_iter().next().ok_or(Error::NotFound)?;
        let session = record.decode()?; // an error names the key
        Ok(Some((session, record)))
    }

    // func (s *Sessions) StartOnce(id string, sess *Session) error {
    //     // Racy: two logins can both see ErrNotFound here, and both write.
    //     if _, err := s.store.Read("session/" + id); err != store.ErrNotFound {
    //         return errors.Conflict("sessions", "session %s already started", id)
    //     }
    //     return s.Start(id, sess)
    // }
    //
    // The port closes the race with the versioned API of the same database and table:
    // `create` writes only if no live record holds the key, in one step.
    async fn start_once(&self, id: &str, session: &Session) -> Result<bool, Error> {
        let record = Record::from_json(format!("session/{id}"), session)?;
        let sessions = self.store.versioned("", "")?; // auth/sessions, from init
        let stored = store_core::Record::new(record.key, record.value)
            .with_ttl(Duration::from_secs(30 * 60));
        match sessions.create(stored).await {
            Ok(_version) => Ok(true),
            Err(Error::AlreadyExists(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    // func (s *Sessions) ForUser(prefix string, page, size uint) ([]string, error) {
    //     return s.store.List(store.ListPrefix("session/"+prefix),
    //         store.ListOffset(page*size), store.ListLimit(size))
    // }
    async fn list(&self, prefix: &str, page: usize, size: usize) -> Result<Vec<String>, Error> {
        self.store
            .list(
                ListOptions::default()
                    .prefix(format!("session/{prefix}"))
                    .offset(page * size)
                    .limit(size),
            )
            .await
    }

    // func (s *Sessions) End(id string) error {
    //     return s.store.Delete("session/" + id)   // deleting a missing key is not an error
    // }
    async fn end(&self, id: &str) -> Result<(), Error> {
        self.store
            .delete(&format!("session/{id}"), DeleteOptions::default())
            .await
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // In Go: store := memory.NewStore(). Here: any Storage stack behind the adapter.
    let store: Arc<dyn Store> = Arc::new(StoreAdapter::new(store_memory::MemoryStorage::new()));
    let sessions = Sessions::new(store.clone()).await?;

    for (id, user, device) in [
        ("alice-1", "alice", "laptop"),
        ("alice-2", "alice", "phone"),
        ("bob-1", "bob", "tablet"),
    ] {
        let session = Session {
            user: user.into(),
            device: device.into(),
        };
        sessions.start(id, &session).await?;
    }

    let (session, record) = sessions.get("alice-2").await?.expect("alice-2 was started");
    println!(
        "alice-2: {session:?}, metadata {:?}, expires in {:?}",
        record.metadata,
        record.expiry.map(|d| d.as_secs())
    );
    // Metadata integers stay integers.
    assert_eq!(record.metadata.get("generation"), Some(&json!(1)));

    println!(
        "alice's sessions, page 0: {:?}",
        sessions.list("alice", 0, 1).await?
    );
    println!(
        "alice's sessions, page 1: {:?}",
        sessions.list("alice", 1, 1).await?
    );
    println!(
        "alice's sessions, page 2: {:?}",
        sessions.list("alice", 2, 1).await?
    );

    // Two logins race to start the same session: exactly one wins.
    let carol = Session {
        user: "carol".into(),
        device: "watch".into(),
    };
    let (first, second) = tokio::join!(
        sessions.start_once("carol-1", &carol),
        sessions.start_once("carol-1", &carol)
    );
    assert!(first? ^ second?, "exactly one start_once wins");
    let (read, _) = sessions.get("carol-1").await?.expect("carol-1 was started");
    assert_eq!(read, carol);
    println!("carol-1 started once by two racing logins; it reads back through the facade");

    sessions.end("bob-1").await?;
    sessions.end("bob-1").await?; // twice: still Ok, as in go-micro
    assert!(sessions.get("bob-1").await?.is_none());
    println!("bob-1 ended; get answers None (go-micro: store.ErrNotFound)");

    // Init made auth/sessions this store's default scope; other scopes do not see its keys.
    let in_scope = store.list(ListOptions::default()).await?;
    let elsewhere = store
        .list(ListOptions::default().database("micro").table("micro"))
        .await?;
    println!("keys in auth/sessions: {in_scope:?}; in micro/micro: {elsewhere:?}");
    assert!(elsewhere.is_empty());

    println!("store: {} ({})", store.name(), store.describe());
    store.disconnect().await
}
