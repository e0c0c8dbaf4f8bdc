mod account;
mod bearer;
mod clock;
pub(crate) mod device;
mod orders;
mod refusal;
mod session;
mod timeline;

pub use account::AccountPanel;
pub use bearer::BearerPanel;
pub use clock::ClockBar;
pub use device::DevicePanel;
pub use orders::OrdersPanel;
pub use refusal::RefusalView;
pub use session::SessionPanel;
pub use timeline::Timeline;
