use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::InvalidValue;

/// The trading channel a customer acted through. Seed 000 has four: the PC web
/// site, the smartphone web site, the phone trading app and the desktop tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The default when a request names no channel.
    #[default]
    Web,
    MobileWeb,
    MobileApp,
    DesktopApp,
}

impl Channel {
    /// Every channel, in a stable order.
    pub const ALL: [Channel; 4] = [Channel::Web, Channel::MobileWeb, Channel::MobileApp, Channel::DesktopApp];

    /// The wire name (`web`, `mobile_web`, `mobile_app`, `desktop_app`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::MobileWeb => "mobile_web",
            Channel::MobileApp => "mobile_app",
            Channel::DesktopApp => "desktop_app",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or(InvalidValue("channel must be one of web, mobile_web, mobile_app, desktop_app"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_parses_back_from_its_wire_name() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
        }
    }

    #[test]
    fn an_unknown_channel_is_refused() {
        assert!("fax".parse::<Channel>().is_err());
    }
}
