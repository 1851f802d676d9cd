//! Any bytes an agent's stream may carry: decoded as the catcher decodes them, then checked as
//! the stream checks a message (hello, event, progress). Nothing may panic.
#![no_main]

use edgebackup_proto::v1 as pb;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = pb::AgentMessage::decode(data) {
        let _ = catcher::stream::check_message(m);
    }
});
