//! The console's charts, drawn as SVG by plotters: one line per series
//! over hourly buckets.

use plotters::prelude::*;

/// One line: its name, colour and a count per hour bucket.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: RGBColor,
    pub counts: Vec<u64>,
}

/// An hourly line chart; `hours` labels the x axis (hours before now).
pub fn hourly(title: &str, series: &[Series<'_>], hours: usize) -> String {
    let mut svg = String::new();
    let top = series
        .iter()
        .flat_map(|s| s.counts.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let drawn = draw(&mut svg, title, series, hours, top);
    match drawn {
        Ok(()) => svg,
        Err(e) => format!("<p class=\"error\">the chart could not be drawn: {e}</p>"),
    }
}

fn draw(
    svg: &mut String,
    title: &str,
    series: &[Series<'_>],
    hours: usize,
    top: u64,
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    {
        let root = SVGBackend::with_string(svg, (760, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(48)
            .build_cartesian_2d(0..hours.max(1), 0..top + top / 10 + 1)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("hours ago")
            .x_label_formatter(&|h| format!("{}", hours.saturating_sub(*h)))
            .y_desc("decisions")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|x| e(&x))?;
        for s in series {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(
                    s.counts.iter().enumerate().map(|(i, n)| (i, *n)),
                    color.stroke_width(2),
                ))
                .map_err(|x| e(&x))?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|x| e(&x))?;
        root.present().map_err(|x| e(&x))?;
    }
    Ok(())
}

/// The colour of an action's line.
pub fn action_color(a: crate::domain::Action) -> RGBColor {
    match a {
        crate::domain::Action::Allow => RGBColor(46, 125, 50),
        crate::domain::Action::StepUp => RGBColor(230, 140, 0),
        crate::domain::Action::Deny => RGBColor(198, 40, 40),
    }
}

/// A colour per channel, in `Channel::ALL` order.
pub const CHANNEL_COLORS: [RGBColor; 5] = [
    RGBColor(21, 101, 192),
    RGBColor(106, 27, 154),
    RGBColor(0, 131, 143),
    RGBColor(121, 85, 72),
    RGBColor(96, 125, 139),
];
