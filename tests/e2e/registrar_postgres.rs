//! The same registrar suite against a real PostgreSQL server that this test starts:
//! one server, one database per case, run in sequence so the server outlives them all.

#[path = "registrar_cases.rs"]
mod cases;

use cases::Ctx;
use softswitch_e2e::Postgres;

#[test]
fn registrar_suite_on_postgres() {
    let port = 25432 + (std::process::id() % 1000) as u16;
    let pg = Postgres::start(port);
    let ctx = Ctx { pg: Some(&pg) };
    cases::register_and_list(&ctx);
    cases::wrong_password_is_refused(&ctx);
    cases::unknown_user_is_indistinguishable(&ctx);
    cases::expiry_limits(&ctx);
    cases::unregister_all(&ctx);
    cases::refresh_and_query(&ctx);
    cases::restart_keeps_bindings(&ctx);
}
