//! The voicemail spool: one directory per mailbox, a folder per state (`INBOX`
//! for new messages, `Old` once listened to), and per message a sound file and a
//! `.txt` of metadata in the `[message]` format Asterisk writes.
//!
//! A node's spool is indexed by the `voicemail` table ([`VoicemailIndex`]): listings
//! and counts come from it, and every change is written to it, so nodes sharing a
//! database and a spool directory agree on each mailbox. Without an index (the
//! machines' unit tests) the directory alone is read.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::MailboxId;
use crate::store::voicemail::{Stored, VoicemailIndex};

/// New messages.
pub const INBOX: &str = "INBOX";
/// Messages the owner has listened to.
pub const OLD: &str = "Old";

/// What is known about a message, from its `.txt`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub callerid: String,
    /// Unix seconds.
    pub origtime: i64,
    /// Seconds of audio.
    pub duration: u64,
    /// The extension and context the call was for.
    pub exten: String,
    pub context: String,
    /// The message's own identity (Asterisk's `msg_id`, `origtime-random`); given
    /// when the message is filed if empty. It survives moves between folders.
    pub msg_id: String,
}

impl Meta {
    fn render(&self, mailbox: &MailboxId) -> String {
        format!(
            ";\n; Message Information file\n;\n[message]\norigmailbox={}\ncontext={}\nexten={}\ncallerid={}\norigtime={}\nduration={}\nmsg_id={}\n",
            mailbox.number,
            self.context,
            self.exten,
            self.callerid,
            self.origtime,
            self.duration,
            self.msg_id
        )
    }

    fn parse(text: &str) -> Meta {
        let mut m = Meta::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().to_string();
            match k.trim() {
                "callerid" => m.callerid = v,
                "origtime" => m.origtime = v.parse().unwrap_or(0),
                "duration" => m.duration = v.parse().unwrap_or(0),
                "exten" => m.exten = v,
                "context" => m.context = v,
                "msg_id" => m.msg_id = v,
                _ => {}
            }
        }
        m
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub folder: &'static str,
    pub number: u32,
    /// The sound file (`.../msg0003.wav`).
    pub sound: PathBuf,
    pub meta: Meta,
}

impl Message {
    /// The name Playback takes: the sound file without its extension.
    pub fn playable(&self) -> String {
        self.sound.with_extension("").to_string_lossy().into_owned()
    }
}

/// Greetings a mailbox owner may have recorded (Asterisk's file names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    Unavailable,
    Busy,
}

#[derive(Clone)]
pub struct Spool {
    root: PathBuf,
    index: Option<Arc<VoicemailIndex>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("root", &self.root)
            .field("indexed", &self.index.is_some())
            .finish()
    }
}

impl Spool {
    /// A spool read from its directory alone.
    pub fn new(root: impl Into<PathBuf>) -> Spool {
        Spool {
            root: root.into(),
            index: None,
        }
    }

    /// A spool whose listings come from the `voicemail` table.
    pub fn indexed(root: impl Into<PathBuf>, index: Arc<VoicemailIndex>) -> Spool {
        Spool {
            root: root.into(),
            index: Some(index),
        }
    }

    pub fn dir(&self, mailbox: &MailboxId) -> PathBuf {
        self.root.join(&mailbox.context).join(&mailbox.number)
    }

    fn folder(&self, mailbox: &MailboxId, folder: &str) -> PathBuf {
        self.dir(mailbox).join(folder)
    }

    /// The messages of a folder, oldest (lowest number) first. A missing folder is
    /// an empty one. With an index, a message whose sound file is gone (removed by
    /// hand) is not listed.
    pub fn list(&self, mailbox: &MailboxId, folder: &'static str) -> Vec<Message> {
        let Some(index) = &self.index else {
            return self.scan(mailbox, folder);
        };
        let mut out: Vec<Message> = index
            .messages(mailbox)
            .into_iter()
            .filter(|m| m.folder == folder)
            .map(|m| Message {
                folder,
                number: m.msgnum,
                sound: self.root.join(&m.recording),
                meta: m.meta,
            })
            .filter(|m| m.sound.is_file())
            .collect();
        out.sort_by_key(|m| m.number);
        out
    }

    /// The messages of a folder as its directory holds them.
    fn scan(&self, mailbox: &MailboxId, folder: &'static str) -> Vec<Message> {
        let dir = self.folder(mailbox, folder);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out: Vec<Message> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let path = e.path();
                let number = message_number(&path)?;
                (path.extension()? == "wav").then_some(())?;
                let meta = std::fs::read_to_string(path.with_extension("txt"))
                    .map(|t| Meta::parse(&t))
                    .unwrap_or_default();
                Some(Message {
                    folder,
                    number,
                    sound: path,
                    meta,
                })
            })
            .collect();
        out.sort_by_key(|m| m.number);
        out
    }

    /// (new, old) message counts.
    pub fn counts(&self, mailbox: &MailboxId) -> (usize, usize) {
        (
            self.list(mailbox, INBOX).len(),
            self.list(mailbox, OLD).len(),
        )
    }

    /// The sound file for the next new message (the folder is created).
    pub fn next_message(&self, mailbox: &MailboxId) -> io::Result<PathBuf> {
        self.next_in(mailbox, INBOX)
    }

    fn next_in(&self, mailbox: &MailboxId, folder: &'static str) -> io::Result<PathBuf> {
        let dir = self.folder(mailbox, folder);
        std::fs::create_dir_all(&dir)?;
        // The directory too: a number is never reused while a file holds it, even
        // one the index does not know yet.
        let next = self
            .list(mailbox, folder)
            .into_iter()
            .chain(self.scan(mailbox, folder))
            .map(|m| m.number + 1)
            .max()
            .unwrap_or(0);
        Ok(dir.join(format!("msg{next:04}.wav")))
    }

    /// Writes the metadata of the message recorded to `sound` and files it in the
    /// index; a message without a `msg_id` is given one.
    pub fn save_meta(&self, mailbox: &MailboxId, sound: &Path, meta: &Meta) -> io::Result<()> {
        let mut meta = meta.clone();
        if meta.msg_id.is_empty() {
            meta.msg_id = format!("{}-{:08x}", meta.origtime, rand::random::<u32>());
        }
        std::fs::write(sound.with_extension("txt"), meta.render(mailbox))?;
        self.file(mailbox, sound, meta);
        Ok(())
    }

    /// Records in the index that the message `meta` is now at `sound`.
    fn file(&self, mailbox: &MailboxId, sound: &Path, meta: Meta) {
        let Some(index) = &self.index else {
            return;
        };
        let folder = sound
            .parent()
            .and_then(Path::file_name)
            .and_then(|f| [INBOX, OLD].into_iter().find(|name| f == *name));
        let recording = sound.strip_prefix(&self.root).ok();
        let (Some(folder), Some(recording), Some(msgnum)) =
            (folder, recording, message_number(sound))
        else {
            tracing::warn!(sound = %sound.display(), "a voicemail message outside the spool is not indexed");
            return;
        };
        index.put(
            mailbox,
            Stored {
                folder,
                msgnum,
                recording: recording.to_string_lossy().into_owned(),
                meta,
            },
        );
    }

    /// Indexes the messages of the spool directory the index does not hold: a spool
    /// from before the index, or copied from another PBX. Already known messages
    /// (by `msg_id`, or by sound file for those without one) are left as they are.
    pub fn import(&self) -> usize {
        let Some(index) = &self.index else {
            return 0;
        };
        let mut imported = 0;
        for mailbox in self.mailboxes() {
            let known = index.messages(&mailbox);
            for folder in [INBOX, OLD] {
                for mut msg in self.scan(&mailbox, folder) {
                    let recording = msg.sound.strip_prefix(&self.root).ok();
                    let seen = known.iter().any(|k| {
                        (!msg.meta.msg_id.is_empty() && k.meta.msg_id == msg.meta.msg_id)
                            || recording.is_some_and(|r| Path::new(&k.recording) == r)
                    });
                    if seen {
                        continue;
                    }
                    if msg.meta.msg_id.is_empty() {
                        // Named after its file so every node importing the same
                        // shared spool files it once.
                        msg.meta.msg_id = format!(
                            "spool-{}-{}-{}-{}",
                            mailbox.context, mailbox.number, folder, msg.number
                        );
                    }
                    self.file(&mailbox, &msg.sound, msg.meta);
                    imported += 1;
                }
            }
        }
        imported
    }

    /// Every mailbox with a directory in the spool.
    fn mailboxes(&self) -> Vec<MailboxId> {
        let subdirs = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter(|e| e.path().is_dir())
                        .filter_map(|e| e.file_name().into_string().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        subdirs(&self.root)
            .into_iter()
            .flat_map(|context| {
                subdirs(&self.root.join(&context))
                    .into_iter()
                    .filter_map(move |n| MailboxId::parse(&format!("{n}@{context}")))
            })
            .collect()
    }

    /// Moves a new message to `Old`; returns it as it is now.
    pub fn mark_old(&self, mailbox: &MailboxId, msg: &Message) -> io::Result<Message> {
        if msg.folder == OLD {
            return Ok(msg.clone());
        }
        let to = self.next_in(mailbox, OLD)?;
        let txt = msg.sound.with_extension("txt");
        if txt.exists() {
            std::fs::rename(&txt, to.with_extension("txt"))?;
        }
        std::fs::rename(&msg.sound, &to)?;
        if !msg.meta.msg_id.is_empty() {
            self.file(mailbox, &to, msg.meta.clone());
        }
        Ok(Message {
            folder: OLD,
            number: message_number(&to).unwrap_or(0),
            sound: to,
            meta: msg.meta.clone(),
        })
    }

    pub fn delete(&self, mailbox: &MailboxId, msg: &Message) -> io::Result<()> {
        if let Some(index) = &self.index
            && !msg.meta.msg_id.is_empty()
        {
            index.delete(mailbox, &msg.meta.msg_id);
        }
        let _ = std::fs::remove_file(msg.sound.with_extension("txt"));
        std::fs::remove_file(&msg.sound)
    }

    /// The recorded greeting of that kind, as a Playback name, if there is one.
    pub fn greeting(&self, mailbox: &MailboxId, kind: Greeting) -> Option<String> {
        let name = match kind {
            Greeting::Unavailable => "unavail",
            Greeting::Busy => "busy",
        };
        let base = self.dir(mailbox).join(name);
        media::prompt::Prompt::EXTENSIONS
            .iter()
            .any(|ext| base.with_extension(ext).is_file())
            .then(|| base.to_string_lossy().into_owned())
    }
}

/// 3 for `msg0003.wav`.
fn message_number(path: &Path) -> Option<u32> {
    path.file_stem()?
        .to_str()?
        .strip_prefix("msg")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> MailboxId {
        MailboxId::parse("1001@default").unwrap()
    }

    fn leave(spool: &Spool, who: &str) -> PathBuf {
        let path = spool.next_message(&mailbox()).unwrap();
        std::fs::write(&path, b"RIFF").unwrap();
        let meta = Meta {
            callerid: who.into(),
            origtime: 1_790_000_000,
            duration: 7,
            exten: "1001".into(),
            context: "internal".into(),
            msg_id: String::new(),
        };
        spool.save_meta(&mailbox(), &path, &meta).unwrap();
        path
    }

    #[test]
    fn messages_are_numbered_listed_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        assert_eq!(spool.counts(&mailbox()), (0, 0));
        let first = leave(&spool, "\"Alice\" <1002>");
        let second = leave(&spool, "<1003>");
        assert!(first.ends_with("default/1001/INBOX/msg0000.wav"));
        assert!(second.ends_with("default/1001/INBOX/msg0001.wav"));
        let inbox = spool.list(&mailbox(), INBOX);
        assert_eq!(inbox.len(), 2);
        assert_eq!(inbox[0].meta.callerid, "\"Alice\" <1002>");
        assert_eq!(inbox[0].meta.duration, 7);
        assert_eq!(spool.counts(&mailbox()), (2, 0));
    }

    #[test]
    fn listened_messages_move_to_old_and_deleted_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        leave(&spool, "a");
        leave(&spool, "b");
        let inbox = spool.list(&mailbox(), INBOX);
        let old = spool.mark_old(&mailbox(), &inbox[1]).unwrap();
        assert_eq!((old.folder, old.number), (OLD, 0));
        assert_eq!(old.meta.callerid, "b");
        assert_eq!(spool.counts(&mailbox()), (1, 1));
        spool.delete(&mailbox(), &old).unwrap();
        assert_eq!(spool.counts(&mailbox()), (1, 0));
        // The next new message does not reuse a number still in the folder.
        assert!(leave(&spool, "c").ends_with("INBOX/msg0001.wav"));
    }

    #[tokio::test]
    async fn an_indexed_spool_lists_from_the_table_and_imports_an_older_spool() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let store = crate::store::Store::connect(&url, false).await.unwrap();
        let root = dir.path().join("spool");
        // A spool from before the index: two messages the table does not hold.
        let plain = Spool::new(&root);
        leave(&plain, "old-a");
        leave(&plain, "old-b");
        let index = Arc::new(
            VoicemailIndex::open(store.clone(), "n1".into())
                .await
                .unwrap(),
        );
        let spool = Spool::indexed(&root, index.clone());
        assert_eq!(spool.counts(&mailbox()), (0, 0), "not indexed yet");
        assert_eq!(spool.import(), 2);
        assert_eq!(spool.import(), 0, "imported once");
        assert_eq!(spool.counts(&mailbox()), (2, 0));

        // A new message gets its own id; hearing one moves its row with it.
        let third = leave(&spool, "new");
        assert!(third.ends_with("INBOX/msg0002.wav"));
        let inbox = spool.list(&mailbox(), INBOX);
        assert_eq!(inbox[2].meta.callerid, "new");
        assert!(!inbox[2].meta.msg_id.is_empty());
        let heard = spool.mark_old(&mailbox(), &inbox[0]).unwrap();
        assert_eq!(
            index
                .messages(&mailbox())
                .iter()
                .filter(|m| m.folder == OLD)
                .count(),
            1
        );
        spool.delete(&mailbox(), &heard).unwrap();
        assert_eq!(spool.counts(&mailbox()), (2, 0));

        // A file removed by hand is not listed even though its row is there.
        std::fs::remove_file(&third).unwrap();
        assert_eq!(spool.counts(&mailbox()), (1, 0));
    }

    #[test]
    fn greetings_are_found_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path());
        assert_eq!(spool.greeting(&mailbox(), Greeting::Busy), None);
        std::fs::create_dir_all(spool.dir(&mailbox())).unwrap();
        std::fs::write(spool.dir(&mailbox()).join("busy.wav"), b"x").unwrap();
        let g = spool.greeting(&mailbox(), Greeting::Busy).unwrap();
        assert!(g.ends_with("default/1001/busy"));
    }
}
