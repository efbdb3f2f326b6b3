// The viewer's main window: canvas in the middle, Layers dock (list and
// contrast) on the left, plugin docks on the right, Log dock (what workers
// print, warn and fail with, and their events) under the canvas, status bar
// with hover value, frame rate, event-loop lag and one progress bar per
// running worker. It backs the C plugin API
// (plugin_api.cpp) and offers a few queries for scripts and tests.
#pragma once

#include "canvas.h"
#include "log_dock.h"
#include "viewer_plugin.h"

#include <QElapsedTimer>
#include <QMainWindow>
#include <QPointer>
#include <QStringList>
#include <QTimer>

#include <map>

class QDockWidget;
class QDoubleSpinBox;
class QLabel;
class QHBoxLayout;
class QListWidget;
class QMenu;
class QProgressBar;
class Viewer;

// The C handle plugins hold; valid while its Viewer lives (plugin_api.cpp
// keeps the set of live handles so a stale one is rejected).
struct viewer {
    Viewer *self;
};
viewer *viewer_handle_new(Viewer *self);
void viewer_handle_free(viewer *h);

class Viewer : public QMainWindow {
public:
    // headless: never ask before closing (tests, --quit-after-ms, offscreen).
    explicit Viewer(bool headless, QWidget *parent = nullptr);
    ~Viewer() override;

    viewer *handle() const { return handle_; }
    // Refreshes the status bar's "bytes pending" per worker (a 250 ms timer
    // calls it; tests call it while the GUI holds a frame back).
    void show_pending();

    // Plugins: a shared module exporting viewer_plugin_init. Returns its
    // status (negative: not loaded or init failed; reported on stderr).
    int load_plugin(const QString &path);
    int load_plugin_dir(const QString &dir);  // every *.so; returns how many loaded
    // Closes a plugin (its dock's close button, Plugins > Close NAME): closes
    // its scope, then destroys its docks, their widgets and connections and
    // their user_data. False if no open plugin has that name.
    bool close_plugin(const QString &name);
    worker_scope *dock_scope(int dock);  // the plugin's scope; NULL if none

    // ---- backends of the C API (GUI thread; plugin_api.cpp checks that)
    int set_layer(const char *name, const vimage *img);
    int set_contrast(const char *name, double lo, double hi);
    int get_contrast(const char *name, double *lo, double *hi) const;
    int watch(worker *w);
    void unwatch(worker *w);  // no longer waited for (finished, or freed unstarted)
    int add_dock(const char *title, void *user_data, viewer_destroy_fn destroy);
    enum class Kind { Dock, Button, Label, LineEdit, Plot };
    int add_widget(int dock, Kind kind, const char *text);
    long connect_widget(int widget, viewer_callback cb, void *ud, viewer_destroy_fn destroy);
    int disconnect_widget(int widget, long id);
    int set_enabled(int widget, bool enabled);
    int set_text(int widget, const char *text);
    int set_plot(int widget, const float *y, int n);
    bool closing() const { return closing_ || tearing_down_; }

    // ---- for scripts (--click) and tests
    Canvas *canvas() const { return canvas_; }
    Layer *layer(const QString &name) const { return canvas_->find(name); }
    QWidget *find_widget(const QString &dock, const QString &name) const;
    bool click(const QString &dock, const QString &button);   // false: not found/disabled
    bool submit(const QString &dock, const QString &edit, const QString &text);
    QString text_of(const QString &dock, const QString &name) const;
    int connection_count(const QString &dock, const QString &name) const;
    // Every Log line: "NAME: EVENT[: message]", "NAME > printed line",
    // "NAME ! stderr line", "plugin P: loaded", "closing: ...".
    const QStringList &activity() const { return log_->lines(); }
    LogDock *log_dock() const { return log_; }
    int watched_pending() const { return (int)watched_.size(); }
    std::pair<long long, long long> last_progress(const QString &worker) const;
    bool close_done() const { return close_done_; }
    bool save_screenshot(const QString &file, double scale = 1.0);

protected:
    void closeEvent(QCloseEvent *e) override;

private:
    struct Item {
        Kind kind;
        int dock = 0;
        QString name;
        QPointer<QWidget> widget;
        void *ud = nullptr;  // docks: plugin user_data
        viewer_destroy_fn destroy = nullptr;
        int plugin = -1;     // docks: index in plugins_ (-1: added by no plugin)
    };
    struct Plugin {
        QString name;
        worker_scope *scope = nullptr;  // NULL once closed
        QAction *close_action = nullptr;
    };
    struct Conn {
        int widget;
        viewer_callback cb;
        void *ud;
        viewer_destroy_fn destroy;
        QMetaObject::Connection qt;
    };
    struct Watched {
        QString name;
        QWidget *box = nullptr;
        QProgressBar *bar = nullptr;
        QLabel *pending = nullptr;  // bytes yielded, not yet delivered (worker_backlog)
    };
    static void on_worker_event(worker_event *ev, void *ctx);
    void handle_worker_event(worker_event *ev);
    void log(const QString &line, LogDock::Kind kind = LogDock::Kind::Event);
    void fire(long conn);
    Item *item(int id, Kind kind);
    const Item *item_named(const QString &dock, const QString &name) const;
    void rebuild_layer_list();
    void select_layer(Layer *l);
    bool confirm_quit(int live);
    void finish_closing();
    void close_plugin_at(int plugin);
    void drop_dock(int dock);
    void build_layers_dock();
    void arrange_docks();
    void build_status_bar();
    void show_stats();

    viewer *handle_;
    bool headless_;
    Canvas *canvas_;
    QListWidget *layer_list_ = nullptr;
    QDoubleSpinBox *lo_ = nullptr, *hi_ = nullptr;
    QLabel *layer_info_ = nullptr, *hover_ = nullptr, *perf_ = nullptr;
    LogDock *log_ = nullptr;
    QDockWidget *layers_dock_ = nullptr, *last_plugin_dock_ = nullptr;
    bool arrange_pending_ = false;
    QMenu *view_menu_ = nullptr, *plugins_menu_ = nullptr;
    std::vector<Plugin> plugins_;
    int current_plugin_ = -1;  // whose init or widget callback runs
    Layer *current_ = nullptr;  // selected in the list; layers are never removed
    std::map<int, Item> items_;
    std::map<int, QHBoxLayout *> button_row_;  // per dock: the row a next button joins
    std::map<long, Conn> conns_;
    int next_item_ = 1;
    long next_conn_ = 1;
    std::map<worker *, Watched> watched_;
    std::map<QString, std::pair<long long, long long>> progress_;
    QTimer stats_, lag_probe_, close_poll_, pending_poll_;
    QElapsedTimer lag_clock_, close_clock_;
    double lag_max_ms_ = 0, lag_shown_ = 0;
    int fps_ = 0;
    bool closing_ = false, close_done_ = false, tearing_down_ = false;
};
