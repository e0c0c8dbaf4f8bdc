mod account;
mod clock;
mod refusal;
mod timeline;

pub use account::AccountPanel;
pub use clock::ClockBar;
pub use refusal::RefusalView;
pub use timeline::Timeline;
