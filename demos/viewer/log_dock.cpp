#include "log_dock.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QPlainTextEdit>
#include <QTime>
#include <QVBoxLayout>

LogDock::LogDock(QWidget *parent) : QDockWidget("Log", parent) {
    setObjectName("Log");
    auto *body = new QWidget;
    auto *lay = new QHBoxLayout(body);
    lay->setContentsMargins(4, 2, 4, 2);
    auto *side = new QVBoxLayout;
    events_ = new QCheckBox("events");
    events_->setChecked(true);
    events_->setToolTip("Show started, finished, ... besides what workers print, warn and fail with");
    connect(events_, &QCheckBox::toggled, this, [this] { refill(); });
    side->addWidget(events_);
    side->addStretch(1);
    lay->addLayout(side);
    view_ = new QPlainTextEdit;
    view_->setReadOnly(true);
    view_->setMaximumBlockCount(kMaxShown);  // the view; lines_ keeps more
    view_->setFont(QFont("DejaVu Sans Mono", 8));
    view_->setLineWrapMode(QPlainTextEdit::NoWrap);
    lay->addWidget(view_, 1);
    setWidget(body);
}

void LogDock::append(Kind kind, const QString &line) {
    if (lines_.size() >= kMaxLines) {  // drop the oldest tenth at once: amortised O(1)
        lines_.erase(lines_.begin(), lines_.begin() + kMaxLines / 10);
        meta_.erase(meta_.begin(), meta_.begin() + kMaxLines / 10);
    }
    lines_ << line;
    meta_.push_back({kind, QTime::currentTime().toString("HH:mm:ss.zzz")});
    show_line(lines_.size() - 1);
}

void LogDock::show_line(int i) {
    static const char *colors[] = {"#808080", nullptr, "#b07800", "#c0392b"};
    const Meta &m = meta_[i];
    if (m.kind == Kind::Event && !events_->isChecked()) return;
    const char *color = colors[(int)m.kind];
    // white-space:pre keeps the spacing of printed tables and columns.
    QString style = QString("white-space:pre;") + (color ? QString("color:") + color : "");
    view_->appendHtml(QString("<span style=\"%1\">%2  %3</span>")
                          .arg(style, m.time, lines_[i].toHtmlEscaped()));
}

void LogDock::refill() {
    view_->clear();
    int first = lines_.size(), shown = 0;  // only what the view would keep
    while (first > 0 && shown < kMaxShown)
        if (meta_[--first].kind != Kind::Event || events_->isChecked()) shown++;
    for (int i = first; i < lines_.size(); i++) show_line(i);
}

QStringList LogDock::shown() const {
    QString text = view_->toPlainText();
    return text.isEmpty() ? QStringList() : text.split('\n');
}

void LogDock::set_show_events(bool on) { events_->setChecked(on); }
