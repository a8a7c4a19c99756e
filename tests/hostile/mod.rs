//! Attacks: one hostile peer must cost nobody else anything. Each test plays an attack
//! described in issue 12 and checks that the attacker alone pays for it (its session is
//! closed or its input refused) while other clients carry on.

mod edge;
mod ops;
mod scripts;
mod slow;
mod sockets;
mod websocket;
