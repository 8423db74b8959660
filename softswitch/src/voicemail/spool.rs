//! The voicemail spool: one directory per mailbox, a folder per state (`INBOX`
//! for new messages, `Old` once listened to), and per message a sound file and a
//! `.txt` of metadata in the `[message]` format Asterisk writes.

use std::io;
use std::path::{Path, PathBuf};

use super::MailboxId;

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
    pub uniqueid: String,
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
            self.uniqueid
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
                "msg_id" => m.uniqueid = v,
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

#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    pub fn new(root: impl Into<PathBuf>) -> Spool {
        Spool { root: root.into() }
    }

    pub fn dir(&self, mailbox: &MailboxId) -> PathBuf {
        self.root.join(&mailbox.context).join(&mailbox.number)
    }

    fn folder(&self, mailbox: &MailboxId, folder: &str) -> PathBuf {
        self.dir(mailbox).join(folder)
    }

    /// The messages of a folder, oldest (lowest number) first. A missing folder is
    /// an empty one.
    pub fn list(&self, mailbox: &MailboxId, folder: &'static str) -> Vec<Message> {
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
        let next = self
            .list(mailbox, folder)
            .last()
            .map_or(0, |m| m.number + 1);
        Ok(dir.join(format!("msg{next:04}.wav")))
    }

    /// Writes the metadata of the message recorded to `sound`.
    pub fn save_meta(&self, mailbox: &MailboxId, sound: &Path, meta: &Meta) -> io::Result<()> {
        std::fs::write(sound.with_extension("txt"), meta.render(mailbox))
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
        Ok(Message {
            folder: OLD,
            number: message_number(&to).unwrap_or(0),
            sound: to,
            meta: msg.meta.clone(),
        })
    }

    pub fn delete(&self, msg: &Message) -> io::Result<()> {
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
            uniqueid: "u1".into(),
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
        spool.delete(&old).unwrap();
        assert_eq!(spool.counts(&mailbox()), (1, 0));
        // The next new message does not reuse a number still in the folder.
        assert!(leave(&spool, "c").ends_with("INBOX/msg0001.wav"));
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
