// The Log dock: one line per thing a watched worker did — what it printed
// (OUTPUT), warned about or failed with, each prefixed with the worker's
// name — interleaved with its lifecycle events, which the "events" checkbox
// hides. Warnings show in amber, errors and stderr lines in red.
#pragma once

#include <QDockWidget>
#include <QStringList>

#include <vector>

class QCheckBox;
class QPlainTextEdit;

class LogDock : public QDockWidget {
public:
    // Event: started, finished, ... (may be hidden); Output: a stdout line;
    // Warning: warned, or aborted by a timeout; Error: errored, a stderr line.
    enum class Kind { Event, Output, Warning, Error };

    explicit LogDock(QWidget *parent);
    void append(Kind kind, const QString &line);
    // Every line appended, oldest first, without time stamps (the newest
    // kMaxLines are kept), whatever the filter shows.
    const QStringList &lines() const { return lines_; }
    // The lines on screen now, time stamps included, filter applied.
    QStringList shown() const;
    void set_show_events(bool on);

private:
    struct Meta {
        Kind kind;
        QString time;
    };
    static constexpr int kMaxLines = 20000, kMaxShown = 2000;
    void show_line(int i);
    void refill();

    QPlainTextEdit *view_;
    QCheckBox *events_;
    QStringList lines_;
    std::vector<Meta> meta_;  // parallel to lines_
};
