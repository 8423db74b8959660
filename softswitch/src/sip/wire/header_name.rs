//! Header names: the ones the core reads get an enum variant so lookups compare integers,
//! everything else keeps its text. Compact forms (RFC 3261 §7.3.3, RFC 3515, RFC 3903,
//! RFC 4028) map to the same variant as their long names.

use std::fmt;

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal $(, $compact:literal)? ;)*) => {
        /// A SIP header name. Comparison of names on the wire is case-insensitive.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( $variant, )*
            /// Any header the core does not interpret; its text stays in the message buffer.
            Other,
        }

        impl HeaderName {
            /// The canonical spelling used when this switch writes the header.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other => "",
                }
            }

            /// Classifies a name read from the wire (long or compact form, any case).
            pub fn from_wire(name: &[u8]) -> HeaderName {
                if name.len() == 1 {
                    let c = name[0].to_ascii_lowercase();
                    $( $( if c == $compact.as_bytes()[0] { return HeaderName::$variant; } )? )*
                    return HeaderName::Other;
                }
                $( if name.eq_ignore_ascii_case($canonical.as_bytes()) { return HeaderName::$variant; } )*
                HeaderName::Other
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    Contact => "Contact", "m";
    MaxForwards => "Max-Forwards";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    Route => "Route";
    RecordRoute => "Record-Route";
    Path => "Path";
    Authorization => "Authorization";
    ProxyAuthorization => "Proxy-Authorization";
    WwwAuthenticate => "WWW-Authenticate";
    ProxyAuthenticate => "Proxy-Authenticate";
    AuthenticationInfo => "Authentication-Info";
    Allow => "Allow";
    Accept => "Accept";
    Supported => "Supported", "k";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Unsupported => "Unsupported";
    UserAgent => "User-Agent";
    Server => "Server";
    Date => "Date";
    Timestamp => "Timestamp";
    RetryAfter => "Retry-After";
    Subject => "Subject", "s";
    Event => "Event", "o";
    AllowEvents => "Allow-Events", "u";
    SubscriptionState => "Subscription-State";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    SessionExpires => "Session-Expires", "x";
    MinSe => "Min-SE";
    RSeq => "RSeq";
    RAck => "RAck";
    Reason => "Reason";
    PAssertedIdentity => "P-Asserted-Identity";
    PPreferredIdentity => "P-Preferred-Identity";
    Privacy => "Privacy";
    Warning => "Warning";
    AcceptContact => "Accept-Contact", "a";
    RejectContact => "Reject-Contact", "j";
    RequestDisposition => "Request-Disposition", "d";
    Identity => "Identity", "y";
}

impl HeaderName {
    /// Headers whose grammar allows several comma-separated values in one line
    /// (RFC 3261 §7.3.1). WWW-Authenticate and friends are excluded on purpose:
    /// their parameters contain commas and each challenge is one header line.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Path
                | HeaderName::Allow
                | HeaderName::Accept
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::ProxyRequire
                | HeaderName::Unsupported
                | HeaderName::AllowEvents
        )
    }

    /// Headers that may appear at most once in a request (RFC 3261 §20; a second copy
    /// is answered 400, RFC 4475 §3.3.10 and §3.3.11).
    pub fn is_single(self) -> bool {
        matches!(
            self,
            HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::Expires
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_compact_forms_are_the_same_header() {
        assert_eq!(HeaderName::from_wire(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire(b"V"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire(b"VIA"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire(b"call-id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire(b"m"), HeaderName::Contact);
        assert_eq!(HeaderName::from_wire(b"l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::from_wire(b"k"), HeaderName::Supported);
        assert_eq!(HeaderName::from_wire(b"X-Custom"), HeaderName::Other);
        assert_eq!(HeaderName::from_wire(b"q"), HeaderName::Other);
    }
}
