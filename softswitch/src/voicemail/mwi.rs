//! Message-waiting indication (RFC 3842): the `message-summary` body, and the
//! subscriptions phones make to it (RFC 6665), kept as plain data so the node's
//! SIP layer sends the NOTIFYs.

use std::collections::HashMap;

use super::MailboxId;

/// The event package.
pub const EVENT: &str = "message-summary";
pub const CONTENT_TYPE: &str = "application/simple-message-summary";

/// A `message-summary` body for `account` (a SIP URI) with `new`/`old` voice messages.
pub fn summary(account: &str, new: usize, old: usize) -> String {
    format!(
        "Messages-Waiting: {}\r\nMessage-Account: {account}\r\nVoice-Message: {new}/{old} (0/0)\r\n",
        if new > 0 { "yes" } else { "no" }
    )
}

/// One phone's subscription: the dialog the NOTIFYs go in.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub call_id: String,
    /// Our tag (To of the SUBSCRIBE, From of the NOTIFYs).
    pub local_tag: String,
    /// The subscriber's From, with its tag: the To of the NOTIFYs.
    pub remote: String,
    /// Our identity: the URI the phone subscribed to.
    pub local_uri: String,
    /// Where the NOTIFYs go (the SUBSCRIBE's Contact).
    pub target: String,
    /// The SUBSCRIBE's Record-Route, as the route set of the NOTIFYs.
    pub route_set: Vec<String>,
    pub peer: crate::sip::transaction::Peer,
    pub mailboxes: Vec<MailboxId>,
    pub user: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The next CSeq of our NOTIFYs.
    pub cseq: u32,
}

/// Every live subscription, by Call-ID.
#[derive(Debug, Default)]
pub struct Subscriptions {
    by_call_id: HashMap<String, Subscription>,
}

impl Subscriptions {
    pub fn get_mut(&mut self, call_id: &str) -> Option<&mut Subscription> {
        self.by_call_id.get_mut(call_id)
    }

    pub fn insert(&mut self, s: Subscription) {
        self.by_call_id.insert(s.call_id.clone(), s);
    }

    pub fn remove(&mut self, call_id: &str) -> Option<Subscription> {
        self.by_call_id.remove(call_id)
    }

    /// Call-IDs of the subscriptions watching `mailbox`.
    pub fn watching(&self, mailbox: &MailboxId) -> Vec<String> {
        self.by_call_id
            .values()
            .filter(|s| s.mailboxes.contains(mailbox))
            .map(|s| s.call_id.clone())
            .collect()
    }

    /// Whether endpoint `user` has a live subscription (then it gets no
    /// unsolicited NOTIFYs).
    pub fn has_user(&self, user: &str, wall: i64) -> bool {
        self.by_call_id
            .values()
            .any(|s| s.user == user && s.expires_at > wall)
    }

    /// Drops the expired ones; returns them.
    pub fn sweep(&mut self, wall: i64) -> Vec<Subscription> {
        let gone: Vec<String> = self
            .by_call_id
            .values()
            .filter(|s| s.expires_at <= wall)
            .map(|s| s.call_id.clone())
            .collect();
        gone.iter()
            .filter_map(|c| self.by_call_id.remove(c))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_call_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_call_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_says_whether_messages_wait() {
        assert_eq!(
            summary("sip:1001@pbx.local", 2, 5),
            "Messages-Waiting: yes\r\nMessage-Account: sip:1001@pbx.local\r\nVoice-Message: 2/5 (0/0)\r\n"
        );
        assert!(summary("sip:1001@pbx.local", 0, 5).starts_with("Messages-Waiting: no\r\n"));
    }
}
