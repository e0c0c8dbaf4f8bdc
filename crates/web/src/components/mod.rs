mod account;
mod clock;
mod refusal;
mod session;
mod timeline;

pub use account::AccountPanel;
pub use clock::ClockBar;
pub use refusal::RefusalView;
pub use session::SessionPanel;
pub use timeline::Timeline;
