//! Receiver tests through the router, no socket.
